"""(f) LlamaIndex: FuriosaLLM / FuriosaEmbedding against llama-index's HuggingFaceLLM /
HuggingFaceEmbedding on the same model files, each with its default settings.

- N concurrent ``achat`` calls, greedy, at most T tokens each (both sides stop at the
  same EOS, so the work is the same); HuggingFaceLLM's async methods run its sync ones,
  one ``generate`` per call.
- ``get_text_embedding_batch`` over document chunks (each side's default batch size).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare
from ..inputs import chat_messages, chunks
from ..peers import chat_model_dir, embedding_model_dir

OURS_LLM = "FuriosaLLM.achat"
PEER_LLM = "HuggingFaceLLM.achat"
OURS_EMBED = "FuriosaEmbedding"
PEER_EMBED = "HuggingFaceEmbedding"


def _chat_runner(llm: Any) -> Runner:
    from llama_index.core.llms import ChatMessage

    async def all_of(n: int) -> None:
        conversations = [
            [ChatMessage(role=m["role"], content=m["content"]) for m in chat]
            for chat in chat_messages(n)
        ]
        await asyncio.gather(*(llm.achat(c) for c in conversations))

    def run(case: dict[str, Any]) -> dict[str, float]:
        asyncio.run(all_of(case["n"]))
        return {}

    return run


def furiosa_llm(tokens: int) -> Runner:
    from furiosa_integrations.llama_index import FuriosaLLM

    return _chat_runner(FuriosaLLM(temperature=0, max_tokens=tokens))


def huggingface_llm(path: str, tokens: int) -> Runner:
    import torch
    from llama_index.llms.huggingface import HuggingFaceLLM

    llm = HuggingFaceLLM(
        model_name=path,
        tokenizer_name=path,
        device_map="cpu",
        context_window=2048,
        max_new_tokens=tokens,
        model_kwargs={"dtype": torch.float32},
        generate_kwargs={"do_sample": False},
        is_chat_model=True,
    )
    return _chat_runner(llm)


def _embed_runner(model: Any) -> Runner:
    def run(case: dict[str, Any]) -> dict[str, float]:
        model.get_text_embedding_batch(chunks(case["n"]))
        return {}

    return run


def furiosa_embedding() -> Runner:
    from furiosa_integrations.llama_index import FuriosaEmbedding

    return _embed_runner(FuriosaEmbedding())


def huggingface_embedding(path: str) -> Runner:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return _embed_runner(HuggingFaceEmbedding(model_name=path, device="cpu"))


def run(settings: Settings) -> list[Row]:
    n, tokens = (8, 32) if settings.quick else (16, 64)
    docs = 200 if settings.quick else 500
    chat_case = f"{n} concurrent achat, up to {tokens} tokens"
    rows = compare(
        "LlamaIndex",
        [
            Contender(OURS_LLM, f"{__name__}:furiosa_llm", {"tokens": tokens}),
            Contender(
                PEER_LLM,
                f"{__name__}:huggingface_llm",
                {"path": chat_model_dir(), "tokens": tokens},
            ),
        ],
        [(chat_case, {"n": n}, Metric("rate", "req/s", work=n))],
        settings,
        warmup={"n": 1},
    )
    embed_case = f"get_text_embedding_batch, {docs} chunks"
    rows += compare(
        "LlamaIndex",
        [
            Contender(OURS_EMBED, f"{__name__}:furiosa_embedding"),
            Contender(
                PEER_EMBED, f"{__name__}:huggingface_embedding", {"path": embedding_model_dir()}
            ),
        ],
        [(embed_case, {"n": docs}, Metric("rate", "docs/s", work=docs))],
        settings,
        warmup={"n": 16},
    )
    return rows
