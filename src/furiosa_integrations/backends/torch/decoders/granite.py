"""Granite decoders: Llama's layer with four multipliers (embeddings, residual branches,
attention scale in place of head_dim ** -0.5, and logits divided by ``logits_scaling``)."""

from __future__ import annotations

from .checkpoint import Checkpoint
from .config_fields import layer_types, layer_windows, rope_parameters
from .llama import ANCHOR, pre_norm_layers, shape
from .model import DecoderModel
from .rope import rotary

MODEL_TYPES = ("granite",)


def read(ckpt: Checkpoint) -> DecoderModel:
    config = ckpt.config
    windows = layer_windows(config, layer_types(config))
    sizes = shape(config)
    table = rotary(rope_parameters(config), sizes["head_dim"], ckpt.device, ckpt.path)
    embed = ckpt.need(ANCHOR)
    return DecoderModel(
        family="granite",
        **sizes,
        embed=embed,
        lm_head=ckpt.lm_head(embed),
        final_norm=ckpt.norm("norm"),
        layers=pre_norm_layers(ckpt, windows, scale=float(config.get("attention_multiplier", 1.0))),
        eps=float(config.get("rms_norm_eps", 1e-6)),
        act=config.get("hidden_act", "silu"),
        rope=[table],
        embed_scale=float(config.get("embedding_multiplier", 1.0)),
        residual_scale=float(config.get("residual_multiplier", 1.0)),
        logits_divisor=float(config.get("logits_scaling", 1.0)),
    )
