"""Phi-3 decoders: fused ``qkv_proj`` and ``gate_up_proj`` (already in the stacked layout
the skeleton runs), partial rotary dims, and a sliding window over every layer when set."""

from __future__ import annotations

from .checkpoint import Checkpoint
from .config_fields import all_sliding_if_windowed, layer_types, layer_windows, rope_parameters
from .llama import ANCHOR, shape
from .model import DecoderModel, LayerWeights
from .rope import rotary

MODEL_TYPES = ("phi3",)


def read(ckpt: Checkpoint) -> DecoderModel:
    config = ckpt.config
    windows = layer_windows(config, layer_types(config, all_sliding_if_windowed(config)))
    sizes = shape(config)
    table = rotary(rope_parameters(config), sizes["head_dim"], ckpt.device, ckpt.path)
    layers = []
    for i, window in enumerate(windows):
        p = f"layers.{i}."
        layers.append(
            LayerWeights(
                qkv=ckpt.linear([f"{p}self_attn.qkv_proj"]),
                qkv_bias=ckpt.get(f"{p}self_attn.qkv_proj.bias"),
                o=ckpt.linear([f"{p}self_attn.o_proj"]),
                up=ckpt.linear([f"{p}mlp.gate_up_proj"]),
                down=ckpt.linear([f"{p}mlp.down_proj"]),
                attn_norm=ckpt.norm(f"{p}input_layernorm"),
                mlp_norm=ckpt.norm(f"{p}post_attention_layernorm"),
                window=window,
            )
        )
    embed = ckpt.need(ANCHOR)
    return DecoderModel(
        family="phi3",
        **sizes,
        embed=embed,
        lm_head=ckpt.lm_head(embed),
        final_norm=ckpt.norm("norm"),
        layers=layers,
        eps=float(config.get("rms_norm_eps", 1e-5)),
        act=config.get("hidden_act", "silu"),
        rope=[table],
    )
