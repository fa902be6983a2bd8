"""A decoder family's weights and quirks, in the one shape the shared skeleton runs.

Each family module (llama.py, gemma.py, ...) reads its checkpoint into a
``DecoderModel``: where its norms sit, how its embeddings, attention and logits are
scaled, which layers attend through a sliding window. The forward itself lives once, in
``skeleton.py``, so a later fused or compiled step changes one place for every family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from ..packed_linear import Weight

# "rms": Llama's RMSNorm (normalised in fp32, scaled after the cast back);
# "rms_fp32": scaled in fp32 before the cast (Gemma with its 1 + w folded in, OLMo 2);
# "layer": LayerNorm with a bias (GPT-2, GPT-NeoX).
NormKind = Literal["rms", "rms_fp32", "layer"]


@dataclass
class Norm:
    weight: torch.Tensor
    bias: torch.Tensor | None = None


@dataclass
class LayerWeights:
    # Linear weights: read as tensors, packed for the CPU kernels when the decoder loads.
    qkv: Weight  # q, k and v stacked: one GEMM instead of three
    o: Weight
    up: Weight  # gate and up stacked for gated MLPs; the up projection otherwise
    down: Weight
    attn_norm: Norm | None  # before attention (None: OLMo 2 normalises outputs only)
    mlp_norm: Norm | None  # before the MLP
    attn_out_norm: Norm | None = None  # on the attention output (Gemma 2/3, OLMo 2)
    mlp_out_norm: Norm | None = None  # on the MLP output (Gemma 2/3, OLMo 2)
    q_norm: Norm | None = None  # per head (Qwen3, Gemma 3) or full width (OLMo 2)
    k_norm: Norm | None = None
    qkv_bias: torch.Tensor | None = None
    o_bias: torch.Tensor | None = None
    up_bias: torch.Tensor | None = None
    down_bias: torch.Tensor | None = None
    window: int | None = None  # sliding window: a query sees the last `window` positions
    rope: int = 0  # index into DecoderModel.rope (per-layer RoPE bases, Gemma 3)
    scale: float | None = None  # attention scale (None: head_dim ** -0.5)


@dataclass
class Rotary:
    """A RoPE table's parameters: cos/sin come from these (``rope.RotaryTables``)."""

    inv_freq: torch.Tensor  # fp32, [rotary_dim / 2]
    attention_scaling: float = 1.0  # yarn / longrope scale cos and sin
    rotary_dim: int = 0  # leading head dims rotated (partial rotary: Phi, GPT-NeoX)


@dataclass
class DecoderModel:
    family: str
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    embed: torch.Tensor
    lm_head: Weight
    final_norm: Norm
    layers: list[LayerWeights]
    norm_kind: NormKind = "rms"
    eps: float = 1e-6
    act: str = "silu"
    gated_mlp: bool = True
    qk_norm: Literal["head", "full"] | None = None
    parallel_residual: bool = False  # GPT-NeoX: attention and MLP both read the layer input
    rope: list[Rotary] = field(default_factory=list)  # empty: learned positions (GPT-2)
    position_embed: torch.Tensor | None = None  # GPT-2's learned positions
    embed_scale: float | None = None  # Gemma's sqrt(hidden), Granite's embedding multiplier
    residual_scale: float | None = None  # Granite's residual multiplier
    logits_divisor: float | None = None  # Granite divides logits by logits_scaling
    lm_head_bias: torch.Tensor | None = None
    attn_softcap: float | None = None  # Gemma 2: tanh soft-capping of attention scores
    final_softcap: float | None = None  # Gemma 2/3: tanh soft-capping of the logits
