"""Gemma, Gemma 2 and Gemma 3 (text) decoders.

Their quirks: embeddings scaled by sqrt(hidden) (rounded to the model dtype), RMSNorm
with ``1 + w`` in fp32, a GELU-tanh gated MLP, and from Gemma 2 on: norms after attention
and after the MLP too, ``query_pre_attn_scalar`` for the attention scale, alternating
sliding-window and global layers, tanh soft-capping (attention scores in Gemma 2, final
logits in both). Gemma 3 adds per-head q/k norms and a RoPE base per layer type (local
10k on sliding layers, 1M, possibly scaled, on global ones).
"""

from __future__ import annotations

from typing import Any

from .checkpoint import Checkpoint
from .config_fields import (
    FULL,
    SLIDING,
    NotNative,
    first_of,
    layer_types,
    layer_windows,
    rope_parameters,
)
from .llama import ANCHOR, projections, shape
from .model import DecoderModel, LayerWeights, Rotary
from .rope import rotary

MODEL_TYPES = ("gemma", "gemma2", "gemma3_text")


def _default_types(config: dict[str, Any]) -> Any:
    model_type = config["model_type"]
    if model_type == "gemma2":  # sliding, global, sliding, ...
        return lambda i: SLIDING if (i + 1) % 2 else FULL
    if model_type == "gemma3_text":  # five sliding layers, then one global
        pattern = int(
            first_of(config, "sliding_window_pattern", "_sliding_window_pattern", default=6)
        )
        return lambda i: SLIDING if (i + 1) % pattern else FULL
    return None


def _gemma3_rope(config: dict[str, Any], kind: str) -> dict[str, Any]:
    """Gemma 3's per-type RoPE; older configs give ``rope_local_base_freq`` for sliding layers
    and apply ``rope_scaling`` to global layers only."""
    params = config.get("rope_parameters") or {}
    if isinstance(params.get(kind), dict):
        return rope_parameters(config, kind)
    if kind == SLIDING:
        theta = config.get("rope_local_base_freq", 10000.0)
        return {"rope_type": "default", "rope_theta": theta, "partial_rotary_factor": 1.0}
    return rope_parameters(config, default_theta=1_000_000.0)


def _activation(config: dict[str, Any]) -> str:
    if config["model_type"] != "gemma":
        return str(config.get("hidden_activation") or "gelu_pytorch_tanh")
    act = str(config.get("hidden_act") or "gelu_pytorch_tanh")
    # transformers reads Gemma's legacy "gelu" as the tanh approximation it was trained with.
    return "gelu_pytorch_tanh" if act == "gelu" else act


def read(ckpt: Checkpoint) -> DecoderModel:
    config = ckpt.config
    model_type = config["model_type"]
    if config.get("use_bidirectional_attention"):
        raise NotNative("bidirectional attention (an embedding model, not a decoder)")
    types = layer_types(config, _default_types(config))
    windows = layer_windows(config, types)
    sizes = shape(config)
    gemma3 = model_type == "gemma3_text"
    rope: list[Rotary]
    if gemma3:
        kinds = sorted(set(types))
        rope = [
            rotary(_gemma3_rope(config, kind), sizes["head_dim"], ckpt.device, ckpt.path, kind)
            for kind in kinds
        ]
        rope_index = [kinds.index(kind) for kind in types]
    else:
        rope = [rotary(rope_parameters(config), sizes["head_dim"], ckpt.device, ckpt.path)]
        rope_index = [0] * len(types)
    sandwich = model_type != "gemma"
    scalar = config.get("query_pre_attn_scalar")
    scale = float(scalar) ** -0.5 if sandwich and scalar else None
    layers = []
    for i, window in enumerate(windows):
        p = f"layers.{i}."

        def norm(name: str, p: str = p) -> Any:
            return ckpt.norm(p + name, offset=1.0)

        layers.append(
            LayerWeights(
                **projections(ckpt, p),
                attn_norm=norm("input_layernorm"),
                attn_out_norm=norm("post_attention_layernorm") if sandwich else None,
                mlp_norm=norm(
                    "pre_feedforward_layernorm" if sandwich else "post_attention_layernorm"
                ),
                mlp_out_norm=norm("post_feedforward_layernorm") if sandwich else None,
                q_norm=norm("self_attn.q_norm") if gemma3 else None,
                k_norm=norm("self_attn.k_norm") if gemma3 else None,
                window=window,
                rope=rope_index[i],
                scale=scale,
            )
        )
    embed = ckpt.need(ANCHOR)
    return DecoderModel(
        family=model_type,
        **sizes,
        embed=embed,
        lm_head=ckpt.lm_head(embed),
        final_norm=ckpt.norm("norm", offset=1.0),
        layers=layers,
        norm_kind="rms_fp32",
        eps=float(config.get("rms_norm_eps", 1e-6)),
        act=_activation(config),
        qk_norm="head" if gemma3 else None,
        rope=rope,
        embed_scale=ckpt.scalar(float(config["hidden_size"]) ** 0.5),
        # transformers' Gemma 3 attention ignores attn_logit_softcapping; only Gemma 2 caps.
        attn_softcap=config.get("attn_logit_softcapping") if model_type == "gemma2" else None,
        final_softcap=config.get("final_logit_softcapping") if sandwich else None,
    )
