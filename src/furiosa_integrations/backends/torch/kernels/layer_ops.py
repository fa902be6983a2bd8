"""``furiosa::rotary_store`` and ``furiosa::silu_mul``: a decoder layer's small steps, one op
each, on our kernels' path (the GGUF path, ``LayerStack.own_kernels``).

At one row a decode step is mostly per-op overhead: RoPE on q and k, then writing k and v
into the cache, were ~15 ops a layer (slices, a roll, multiplies, two scatters), a gated
MLP's activation three. The native kernels (``layer_ops.cpp``) do each in one pass, every
row on its own; the reference kernels (torch ops) keep the ops defined everywhere.
"""

# No ``from __future__ import annotations``: TorchScript compiles the wrappers.
import torch
import torch.nn.functional as F

from .grouped_linear import _library

_library.define(
    "rotary_store(Tensor qkv, Tensor cos, Tensor sin, Tensor(a!) keys, Tensor(b!) values, "
    "Tensor slots, Tensor positions, int heads, int kv_heads) -> Tensor"
)
_library.define("silu_mul(Tensor gate_up) -> Tensor")


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    dim = cos.shape[-1]
    rot = x[..., :dim]
    rotated = rot * cos + rot.roll(dim // 2, -1) * sin
    return torch.cat((rotated, x[..., dim:]), dim=-1)


def _rotary_store_reference(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    slots: torch.Tensor,
    positions: torch.Tensor,
    heads: int,
    kv_heads: int,
) -> torch.Tensor:
    tokens, dim = qkv.shape[0], keys.shape[-1]
    split = qkv.reshape(tokens, heads + 2 * kv_heads, dim)
    q, k, v = split[:, :heads], split[:, heads : heads + kv_heads], split[:, heads + kv_heads :]
    keys[slots, :, positions] = _rotate(k, cos, sin)
    values[slots, :, positions] = v
    return _rotate(q, cos, sin)


def _silu_mul_reference(gate_up: torch.Tensor) -> torch.Tensor:
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate) * up


_library.impl("rotary_store", _rotary_store_reference, "CompositeExplicitAutograd")
_library.impl("silu_mul", _silu_mul_reference, "CompositeExplicitAutograd")


def rotary_store(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    slots: torch.Tensor,
    positions: torch.Tensor,
    heads: int,
    kv_heads: int,
) -> torch.Tensor:
    """``qkv`` ``[T, (H + 2 KV) * D]`` -> q ``[T, H, D]`` with RoPE (``cos``/``sin``
    ``[T, 1, R]`` from ``rope.cos_sin``); row ``t``'s rotated k and its v are written at
    ``positions[t]`` of cache slot ``slots[t]`` of ``keys``/``values`` ``[slots, KV, S, D]``."""
    return torch.ops.furiosa.rotary_store(  # type: ignore[no-any-return]
        qkv, cos, sin, keys, values, slots, positions, heads, kv_heads
    )


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * up`` for ``gate_up`` ``[T, 2 I]`` (a gated MLP's fused projection)."""
    return torch.ops.furiosa.silu_mul(gate_up)  # type: ignore[no-any-return]
