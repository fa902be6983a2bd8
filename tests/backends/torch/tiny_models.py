"""Tiny random-weight models built from transformers' own config classes (no download).

Each family gets two layers of hidden size 64 with its quirks switched on and set to
values that matter at this size (a sliding window of 8, soft-caps near the logits' scale,
Granite's multipliers, partial rotary dims). Norm weights and biases are perturbed too:
at their initial values (ones, zeros) Gemma's ``1 + w`` or a LayerNorm bias would go
untested. The bundled chat model's tokenizer is copied in, so the engine can render text
and compile grammars for them.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import torch

from furiosa_integrations.models.resolve import resolve_model

VOCAB = 49152  # the bundled SmolLM2 tokenizer's
WINDOW = 8  # shorter than the test prompts, so sliding-window layers really slide

_COMMON = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "vocab_size": VOCAB,
    "max_position_embeddings": 256,
    "bos_token_id": None,
    "eos_token_id": 0,  # the tokenizer's <|endoftext|>: grammars need a stop token
    "pad_token_id": None,
    # Wider than the default 0.02: at that scale several families' greedy output collapses
    # into repeating one token, which would make the batch comparison weak.
    "initializer_range": 0.1,
}
_GQA = {"num_key_value_heads": 2, "head_dim": 16}
_WIDE = {"initializer_range": 0.3}  # tied or LayerNorm families need it to stay varied

FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {
        **_GQA,
        "rope_parameters": {  # scaled RoPE: frequencies from transformers' initialiser
            "rope_type": "llama3",
            "rope_theta": 10000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
    },
    "mistral": {**_GQA, "sliding_window": WINDOW},
    "qwen2": {**_GQA},  # q/k/v biases
    "qwen3": {**_GQA},  # per-head q/k norms
    "gemma": {**_GQA, **_WIDE},
    "gemma2": {
        **_GQA,
        **_WIDE,
        "tie_word_embeddings": False,  # tied, each prompt repeats one token here
        "sliding_window": WINDOW,
        "query_pre_attn_scalar": 24,
        "attn_logit_softcapping": 1.0,
        "final_logit_softcapping": 5.0,
    },
    "gemma3_text": {
        **_GQA,
        **_WIDE,
        "tie_word_embeddings": False,
        "sliding_window": WINDOW,
        "layer_types": ["sliding_attention", "full_attention"],
        "rope_parameters": {
            "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1e6},
            "sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
        },
        "query_pre_attn_scalar": 24,
        "final_logit_softcapping": 5.0,
    },
    "phi3": {**_GQA, "sliding_window": WINDOW, "partial_rotary_factor": 0.5},
    "olmo2": {**_GQA},
    "granite": {
        **_GQA,
        "embedding_multiplier": 4.0,
        "residual_multiplier": 0.5,
        "attention_multiplier": 0.1,
        "logits_scaling": 2.0,
    },
    "gpt2": {
        **_WIDE,
        "n_embd": 64,
        "n_layer": 2,
        "n_head": 4,
        "n_inner": 128,
        "n_positions": 256,
        "scale_attn_by_inverse_layer_idx": True,
    },
    "gpt_neox": {**_WIDE, "partial_rotary_factor": 0.25, "use_parallel_residual": True},
}
# Architectures with no native decoder: they run through transformers, one sequence a time.
FALLBACK_FAMILIES: dict[str, dict[str, Any]] = {
    "opt": {**_WIDE, "ffn_dim": 128, "word_embed_proj_dim": 64, "enable_bias": True},
}


def _config(model_type: str, extra: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    common = dict(_COMMON)
    if model_type == "gpt2":
        common = {
            k: v
            for k, v in common.items()
            if k
            not in (
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "max_position_embeddings",
            )
        }
    if model_type == "opt":
        common.pop("intermediate_size")
    return AutoConfig.for_model(model_type, **{**common, **extra})


def _snap_to_q4_1(model: Any) -> None:
    import gguf
    from transformers.pytorch_utils import Conv1D

    q4_1 = gguf.GGMLQuantizationType.Q4_1
    for module in model.modules():
        if isinstance(module, torch.nn.Linear | Conv1D):
            # a linear's inputs are its weight's last axis (Conv1D, GPT-2's: its first)
            weight = module.weight.T if isinstance(module, Conv1D) else module.weight
            grid = gguf.quants.dequantize(gguf.quants.quantize(weight.numpy(), q4_1), q4_1)
            weight.copy_(torch.from_numpy(grid))


def copy_tokenizer(target: Path) -> None:
    source = resolve_model(None, "generate").path
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).exists():
            shutil.copy(source / name, target / name)


def build(model_type: str, target: Path, seed: int = 0, gguf_groups: bool = False) -> Path:
    """Save a tiny ``model_type`` causal LM with random weights (and a tokenizer) to ``target``.

    ``gguf_groups``: every linear weight lies on GGUF's Q4_1 grid along its inputs (quantized
    and dequantized by the ``gguf`` package), as a converted GGUF model's weights do, so the
    engine keeps them in their groups and runs our kernels' path."""
    from transformers import AutoModelForCausalLM

    extra = FAMILIES.get(model_type, FALLBACK_FAMILIES.get(model_type))
    assert extra is not None, model_type
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(model_type, extra))
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 1:  # norm weights and biases: move them off ones and zeros
                param.add_(torch.randn_like(param) * 0.2)
        if gguf_groups:
            _snap_to_q4_1(model)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target))
    copy_tokenizer(target)
    return target


def reference(path: Path) -> Any:
    """transformers' own model for the saved checkpoint, fp32, in eval mode."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()


@torch.inference_mode()
def reference_greedy(model: Any, prompt: list[int], max_new_tokens: int) -> list[int]:
    """transformers' ``generate``, greedy, for one prompt on its own."""
    ids = torch.tensor([prompt])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=0,
    )
    return [int(t) for t in out[0, len(prompt) :]]


def prompts_of_many_lengths(seed: int = 0) -> list[list[int]]:
    """Eight prompts, 5 to 37 tokens; each group of four shares a long prefix (so the
    engine copies cached prefixes), and most are longer than the sliding window."""
    generator = torch.Generator().manual_seed(seed)
    bases = [torch.randint(0, VOCAB, (40,), generator=generator).tolist() for _ in range(2)]
    lengths = [5, 37, 12, 21, 9, 33, 26, 18]
    return [bases[i % 2][:length] for i, length in enumerate(lengths)]


async def generate_together(
    native: Any, prompts: list[list[int]], max_tokens: int
) -> list[tuple[list[int], int]]:
    """Greedy token streams for ``prompts`` submitted at once; each prompt's output tokens
    and how many of its prompt tokens came from the cache."""
    from furiosa_integrations.engine import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0)

    async def one(index: int, prompt: list[int]) -> tuple[list[int], int]:
        tokens: list[int] = []
        cached = 0
        async for step in native.stream_generate(prompt, params, f"tiny-{index}"):
            tokens += step.new_token_ids
            cached = step.num_cached_tokens
        return tokens, cached

    return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts))))
