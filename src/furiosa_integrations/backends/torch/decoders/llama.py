"""Llama-shaped decoders: Llama, Mistral (sliding window), Qwen2 (q/k/v biases, optional
window on upper layers), Qwen3 (per-head q/k norms). Their projection names are the ones
Gemma, Granite and OLMo 2 reuse, so ``projections`` serves those families too."""

from __future__ import annotations

from typing import Any

from .checkpoint import Checkpoint
from .config_fields import (
    FULL,
    SLIDING,
    all_sliding_if_windowed,
    head_dim,
    layer_types,
    layer_windows,
    rope_parameters,
)
from .model import DecoderModel, LayerWeights, Rotary
from .rope import rotary

MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
ANCHOR = "embed_tokens.weight"

_QKV = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]
_GATE_UP = ["mlp.gate_proj", "mlp.up_proj"]


def projections(ckpt: Checkpoint, p: str) -> dict[str, Any]:
    """The attention and gated-MLP weights of layer prefix ``p`` (``layers.3.``)."""
    return {
        "qkv": ckpt.linear([p + name for name in _QKV]),
        "qkv_bias": ckpt.stacked([p + name for name in _QKV], "bias"),
        "o": ckpt.linear([f"{p}self_attn.o_proj"]),
        "o_bias": ckpt.get(f"{p}self_attn.o_proj.bias"),
        "up": ckpt.linear([p + name for name in _GATE_UP]),
        "up_bias": ckpt.stacked([p + name for name in _GATE_UP], "bias"),
        "down": ckpt.linear([f"{p}mlp.down_proj"]),
        "down_bias": ckpt.get(f"{p}mlp.down_proj.bias"),
    }


def pre_norm_layers(
    ckpt: Checkpoint, windows: list[int | None], scale: float | None = None
) -> list[LayerWeights]:
    """Llama's layer: RMSNorm before attention and before the MLP (Qwen3's q/k norms if any)."""
    layers = []
    for i, window in enumerate(windows):
        p = f"layers.{i}."
        has_qk_norm = ckpt.get(f"{p}self_attn.q_norm.weight") is not None
        layers.append(
            LayerWeights(
                **projections(ckpt, p),
                attn_norm=ckpt.norm(f"{p}input_layernorm"),
                mlp_norm=ckpt.norm(f"{p}post_attention_layernorm"),
                q_norm=ckpt.norm(f"{p}self_attn.q_norm") if has_qk_norm else None,
                k_norm=ckpt.norm(f"{p}self_attn.k_norm") if has_qk_norm else None,
                window=window,
                scale=scale,
            )
        )
    return layers


def _qwen_window_layers(config: dict[str, Any]) -> Any:
    """Qwen2/3 (older configs): the window applies from layer ``max_window_layers`` up."""
    windowed = bool(config.get("use_sliding_window") and config.get("sliding_window"))
    first = int(config.get("max_window_layers", 28))
    return lambda i: SLIDING if windowed and i >= first else FULL


def shape(config: dict[str, Any]) -> dict[str, Any]:
    """The sizes every Llama-shaped ``DecoderModel`` starts from."""
    heads = int(config["num_attention_heads"])
    return {
        "num_heads": heads,
        "num_kv_heads": int(config.get("num_key_value_heads") or heads),
        "head_dim": head_dim(config),
        "vocab_size": int(config["vocab_size"]),
    }


def read(ckpt: Checkpoint) -> DecoderModel:
    config = ckpt.config
    model_type = config["model_type"]
    if model_type == "mistral":
        default = all_sliding_if_windowed(config)
    elif model_type in ("qwen2", "qwen3"):
        default = _qwen_window_layers(config)
    else:
        default = None
    windows = layer_windows(config, layer_types(config, default))
    if model_type in ("qwen2", "qwen3") and not config.get("use_sliding_window", True):
        windows = [None] * len(windows)  # their config clears sliding_window when unused
    sizes = shape(config)
    table: Rotary = rotary(rope_parameters(config), sizes["head_dim"], ckpt.device, ckpt.path)
    embed = ckpt.need(ANCHOR)
    return DecoderModel(
        family=model_type,
        **sizes,
        embed=embed,
        lm_head=ckpt.lm_head(embed),
        final_norm=ckpt.norm("norm"),
        layers=pre_norm_layers(ckpt, windows),
        eps=float(config.get("rms_norm_eps", 1e-6)),
        act=config.get("hidden_act", "silu"),
        qk_norm="head" if model_type == "qwen3" else None,
        rope=[table],
    )
