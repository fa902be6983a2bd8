"""Build the peers a user would otherwise pick, on the same local model files as ours.

Everything loads from the directories ``resolve_model`` gives our engine (the converted
SmolLM2 and the bundled MiniLM), fp32 on CPU, with the Hub offline. The driver resolves
the directories and hands them to the peers' processes, which never import our package.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def chat_model_dir() -> str:
    """The converted default chat model's directory (call in the driver)."""
    from furiosa_integrations.models.resolve import resolve_model

    return str(resolve_model(None, "generate").path)


def embedding_model_dir() -> str:
    """The default embedding model's directory (call in the driver)."""
    from furiosa_integrations.models.resolve import resolve_model

    return str(resolve_model(None, "embed").path)


def chat_huggingface(path: str, max_new_tokens: int, min_new_tokens: int = 0) -> Any:
    """``ChatHuggingFace(llm=HuggingFacePipeline(...))``, greedy, ``max_new_tokens`` each."""
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline

    pipeline_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": False}
    if min_new_tokens:
        pipeline_kwargs["min_new_tokens"] = min_new_tokens
    llm = HuggingFacePipeline.from_model_id(
        model_id=path,
        task="text-generation",
        device=-1,
        model_kwargs={"dtype": "float32"},
        pipeline_kwargs=pipeline_kwargs,
    )
    return ChatHuggingFace(llm=llm, model_id=path)


class StaticGenerate:
    """transformers' batched ``generate`` on the same weights: the static-batching ceiling.

    Prompts are rendered with the model's chat template, left-padded, and run in batches
    of ``batch_size``; every row runs to the batch's longest ``max_tokens``.
    """

    def __init__(self, path: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")

    def run(self, messages: list[Any], lengths: list[int], batch_size: int) -> list[str]:
        texts = [
            self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
            for m in messages
        ]
        outputs: list[str] = []
        with self.torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[i : i + batch_size],
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,
                )
                longest = max(lengths[i : i + batch_size])
                generated = self.model.generate(
                    **batch,
                    max_new_tokens=longest,
                    min_new_tokens=longest,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
                new = generated[:, batch["input_ids"].shape[1] :]
                outputs += self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return outputs


def huggingface_embeddings(path: str, dtype: str | None = None) -> Any:
    """HuggingFaceEmbeddings as its users build it; ``dtype`` loads the model in another
    precision (sentence-transformers' ``model_kwargs={"torch_dtype": ...}``)."""
    from langchain_huggingface import HuggingFaceEmbeddings

    model_kwargs: dict[str, Any] = {"device": "cpu"}
    if dtype is not None:
        model_kwargs["model_kwargs"] = {"torch_dtype": dtype}
    return HuggingFaceEmbeddings(
        model_name=path,
        model_kwargs=model_kwargs,
        encode_kwargs={"normalize_embeddings": True},
    )
