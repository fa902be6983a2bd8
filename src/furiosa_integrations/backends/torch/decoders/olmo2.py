"""OLMo 2 decoders: no norm before attention or the MLP; RMSNorm on their outputs instead
(before the residual add), and q/k RMSNorms over the whole projection, not per head."""

from __future__ import annotations

from .checkpoint import Checkpoint
from .config_fields import layer_types, layer_windows, rope_parameters
from .llama import ANCHOR, projections, shape
from .model import DecoderModel, LayerWeights
from .rope import rotary

MODEL_TYPES = ("olmo2",)


def read(ckpt: Checkpoint) -> DecoderModel:
    config = ckpt.config
    windows = layer_windows(config, layer_types(config))
    sizes = shape(config)
    table = rotary(rope_parameters(config), sizes["head_dim"], ckpt.device, ckpt.path)
    layers = []
    for i, window in enumerate(windows):
        p = f"layers.{i}."
        layers.append(
            LayerWeights(
                **projections(ckpt, p),
                attn_norm=None,
                mlp_norm=None,
                attn_out_norm=ckpt.norm(f"{p}post_attention_layernorm", fp32=True),
                mlp_out_norm=ckpt.norm(f"{p}post_feedforward_layernorm", fp32=True),
                q_norm=ckpt.norm(f"{p}self_attn.q_norm", fp32=True),
                k_norm=ckpt.norm(f"{p}self_attn.k_norm", fp32=True),
                window=window,
            )
        )
    embed = ckpt.need(ANCHOR)
    return DecoderModel(
        family="olmo2",
        **sizes,
        embed=embed,
        lm_head=ckpt.lm_head(embed),
        final_norm=ckpt.norm("norm", fp32=True),
        layers=layers,
        norm_kind="rms_fp32",  # OLMo 2 scales by the weight before casting back
        eps=float(config.get("rms_norm_eps", 1e-5)),
        act=config.get("hidden_act", "silu"),
        qk_norm="full",
        rope=[table],
    )
