"""``furiosa::decode_layers``: every layer of a decode step as one op, for a Llama-shaped
decoder on our kernels' path (``LayerStack.fused_layers``: RMSNorm before attention and the
MLP, GGUF groups for every linear, RoPE, a gated SiLU MLP, no biases).

The native kernel (``decode_layers.cpp``) calls the same kernels in the same order as the
per-op layers, from C++ instead of from TorchScript through the dispatcher, so its results are
the same bits and a step takes ~4% less time. The reference kernel is that order in torch ops
(each op native where it is loaded), which keeps the op defined everywhere and is what the
native one is tested against.

``torch.ops.furiosa.decode_layers(hidden, ...)`` runs every layer for one new token per row
of ``hidden`` ``[B, hidden]`` (row ``b`` the sequence in ``slots[b]`` at ``positions[b]``);
k and v go into ``keys``/``values`` ``[layers, slots, KV, S, D]``. ``cos``/``sin``: one
``[B, 1, R]`` per RoPE table. Linears come four a layer (q/k/v, out, gate/up, down) as
``codes``/``scales``/``mins``/``activation_bits`` (``GroupedWeight``'s fields), norms two
(attention, MLP); ``windows`` 0 and ``softcap`` 0: none. ``LayerStack.decode`` calls it.
"""

# No ``from __future__ import annotations``: TorchScript compiles ``decode_layers``.
from typing import List  # noqa: UP035 (TorchScript reads the annotations live)

import torch

from . import cache_attention, layer_ops, rms_norm  # noqa: F401 (the ops it composes)
from .grouped_linear import _library

_library.define(
    "decode_layers(Tensor hidden, Tensor[] cos, Tensor[] sin, Tensor(a!) keys, "
    "Tensor(b!) values, Tensor slots, Tensor positions, Tensor[] codes, Tensor[] scales, "
    "Tensor[] mins, int[] activation_bits, Tensor[] norms, int[] rope_index, int[] windows, "
    "float[] attention_scales, float softcap, float eps, int heads, int kv_heads) -> Tensor"
)


def _reference(
    hidden: torch.Tensor,
    cos: List[torch.Tensor],  # noqa: UP006
    sin: List[torch.Tensor],  # noqa: UP006
    keys: torch.Tensor,
    values: torch.Tensor,
    slots: torch.Tensor,
    positions: torch.Tensor,
    codes: List[torch.Tensor],  # noqa: UP006
    scales: List[torch.Tensor],  # noqa: UP006
    mins: List[torch.Tensor],  # noqa: UP006
    activation_bits: List[int],  # noqa: UP006
    norms: List[torch.Tensor],  # noqa: UP006
    rope_index: List[int],  # noqa: UP006
    windows: List[int],  # noqa: UP006
    attention_scales: List[float],  # noqa: UP006
    softcap: float,
    eps: float,
    heads: int,
    kv_heads: int,
) -> torch.Tensor:
    ops = torch.ops.furiosa

    def linear(x: torch.Tensor, i: int) -> torch.Tensor:
        return ops.grouped_linear(x, codes[i], scales[i], mins[i], activation_bits[i])  # type: ignore[no-any-return]

    batch = hidden.shape[0]
    for i in range(len(norms) // 2):
        qkv = linear(ops.rms_norm(hidden, norms[2 * i], eps), 4 * i)
        t = rope_index[i]
        q = ops.rotary_store(
            qkv, cos[t], sin[t], keys[i], values[i], slots, positions, heads, kv_heads
        )
        attended = ops.cache_attention(
            q, keys[i], values[i], slots, positions, windows[i], attention_scales[i], softcap
        )
        hidden = hidden + linear(attended.reshape(batch, -1), 4 * i + 1)
        gate_up = linear(ops.rms_norm(hidden, norms[2 * i + 1], eps), 4 * i + 2)
        hidden = hidden + linear(ops.silu_mul(gate_up), 4 * i + 3)
    return hidden


_library.impl("decode_layers", _reference, "CompositeExplicitAutograd")
