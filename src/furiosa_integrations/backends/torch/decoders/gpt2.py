"""GPT-2 decoders: learned absolute positions, LayerNorm with biases, a plain GELU MLP,
and ``Conv1D`` weights stored ``[in, out]`` (transposed here, once, to ``F.linear``'s
``[out, in]``). Attention may be unscaled, or scaled by the inverse layer index."""

from __future__ import annotations

from .checkpoint import Checkpoint
from .model import DecoderModel, LayerWeights

MODEL_TYPES = ("gpt2",)
ANCHOR = "wte.weight"


def read(ckpt: Checkpoint) -> DecoderModel:
    config = ckpt.config  # loader.read_config maps n_embd, n_head, ... to the usual names
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    dim = hidden // heads
    layers = []
    for i in range(int(config["num_hidden_layers"])):
        p = f"h.{i}."
        scale = dim**-0.5 if config.get("scale_attn_weights", True) else 1.0
        if config.get("scale_attn_by_inverse_layer_idx"):
            scale /= float(i + 1)

        def conv1d(name: str, p: str = p) -> tuple:  # type: ignore[type-arg]
            return ckpt.need(f"{p}{name}.weight").t().contiguous(), ckpt.get(f"{p}{name}.bias")

        qkv, qkv_bias = conv1d("attn.c_attn")
        o, o_bias = conv1d("attn.c_proj")
        up, up_bias = conv1d("mlp.c_fc")
        down, down_bias = conv1d("mlp.c_proj")
        layers.append(
            LayerWeights(
                qkv=qkv,
                qkv_bias=qkv_bias,
                o=o,
                o_bias=o_bias,
                up=up,
                up_bias=up_bias,
                down=down,
                down_bias=down_bias,
                attn_norm=ckpt.norm(f"{p}ln_1"),
                mlp_norm=ckpt.norm(f"{p}ln_2"),
                scale=scale,
            )
        )
    embed = ckpt.need(ANCHOR)
    return DecoderModel(
        family="gpt2",
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=dim,
        vocab_size=int(config["vocab_size"]),
        embed=embed,
        lm_head=ckpt.lm_head(embed),
        final_norm=ckpt.norm("ln_f"),
        layers=layers,
        norm_kind="layer",
        eps=float(config.get("layer_norm_epsilon", 1e-5)),
        act=config.get("activation_function", "gelu_new"),
        gated_mlp=False,
        position_embed=ckpt.need("wpe.weight"),
    )
