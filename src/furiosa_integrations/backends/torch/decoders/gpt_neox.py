"""GPT-NeoX decoders (Pythia and kin): LayerNorm with biases, partial rotary dims, a plain
GELU MLP, parallel residuals, and a fused ``query_key_value`` interleaved per head
(``[heads, 3, head_dim]``), regrouped here once into the ``[q | k | v]`` layout."""

from __future__ import annotations

from typing import Any

import torch

from .checkpoint import Checkpoint
from .config_fields import first_of, rope_parameters
from .model import DecoderModel, LayerWeights
from .rope import rotary

MODEL_TYPES = ("gpt_neox",)
ANCHOR = "embed_in.weight"


def _per_head_to_stacked(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    """``[heads * 3 * d, ...]`` interleaved per head -> ``[3 * heads * d, ...]`` stacked."""
    rest = tensor.shape[1:]
    grouped = tensor.reshape(heads, 3, -1, *rest).transpose(0, 1)
    return grouped.reshape(-1, *rest).contiguous()


def _rope(config: dict[str, Any]) -> dict[str, Any]:
    """Older configs name the rotary share ``rotary_pct`` and its base ``rotary_emb_base``."""
    legacy = dict(config)
    legacy.setdefault("partial_rotary_factor", first_of(config, "rotary_pct", default=0.25))
    legacy.setdefault("rope_theta", first_of(config, "rotary_emb_base", default=10000.0))
    return rope_parameters(legacy)


def read(ckpt: Checkpoint) -> DecoderModel:
    config = ckpt.config
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    dim = hidden // heads
    table = rotary(_rope(config), dim, ckpt.device, ckpt.path)
    layers = []
    for i in range(int(config["num_hidden_layers"])):
        p = f"layers.{i}."
        qkv_bias = ckpt.get(f"{p}attention.query_key_value.bias")
        layers.append(
            LayerWeights(
                qkv=_per_head_to_stacked(ckpt.need(f"{p}attention.query_key_value.weight"), heads),
                qkv_bias=None if qkv_bias is None else _per_head_to_stacked(qkv_bias, heads),
                o=ckpt.need(f"{p}attention.dense.weight"),
                o_bias=ckpt.get(f"{p}attention.dense.bias"),
                up=ckpt.need(f"{p}mlp.dense_h_to_4h.weight"),
                up_bias=ckpt.get(f"{p}mlp.dense_h_to_4h.bias"),
                down=ckpt.need(f"{p}mlp.dense_4h_to_h.weight"),
                down_bias=ckpt.get(f"{p}mlp.dense_4h_to_h.bias"),
                attn_norm=ckpt.norm(f"{p}input_layernorm"),
                mlp_norm=ckpt.norm(f"{p}post_attention_layernorm"),
            )
        )
    embed = ckpt.need(ANCHOR)
    head = ckpt.get("embed_out.weight")
    return DecoderModel(
        family="gpt_neox",
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=dim,
        vocab_size=int(config["vocab_size"]),
        embed=embed,
        lm_head=embed if head is None else head,
        final_norm=ckpt.norm("final_layer_norm"),
        layers=layers,
        norm_kind="layer",
        eps=float(config.get("layer_norm_eps", 1e-5)),
        act=config.get("hidden_act", "gelu"),
        gated_mlp=False,
        parallel_residual=bool(config.get("use_parallel_residual", True)),
        rope=[table],
    )
