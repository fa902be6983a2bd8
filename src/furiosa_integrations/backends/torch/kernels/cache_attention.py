"""``furiosa::cache_attention``: each query row over its own slot's cached keys and values.

Query row ``t`` is a token of the sequence in cache slot ``slots[t]`` at ``positions[t]``
(its own K/V already written there); it attends to columns ``low..positions[t]``, ``low``
the sliding window's start. The native kernel (``cache_attention.cpp``) computes every
row on its own in one fixed order, so a row's result is the same bits in any decode batch
and in any prefill (alone, packed with other sequences, or over a cached prefix): with
GGUF's grouped weights, whose 8-bit activation rounding would turn SDPA's last-bit
differences between batch shapes into visible ones, greedy outputs stay batch invariant.
The reference kernel (torch ops, a row at a time) keeps the op defined everywhere.
"""

# No ``from __future__ import annotations``: TorchScript compiles ``cache_attention``.
import torch

from .grouped_linear import _library

_library.define(
    "cache_attention(Tensor q, Tensor keys, Tensor values, Tensor slots, Tensor positions, "
    "int window, float scale, float softcap) -> Tensor"
)


def _reference(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    slots: torch.Tensor,
    positions: torch.Tensor,
    window: int,
    scale: float,
    softcap: float,
) -> torch.Tensor:
    rows = []
    groups = q.shape[1] // keys.shape[1]
    for t in range(q.shape[0]):
        slot, pos = int(slots[t]), int(positions[t])
        low = max(0, pos - window + 1) if window > 0 else 0
        k = keys[slot, :, low : pos + 1].repeat_interleave(groups, 0)  # [H, C, D]
        v = values[slot, :, low : pos + 1].repeat_interleave(groups, 0)
        scores = torch.einsum("hd,hcd->hc", q[t], k) * scale
        if softcap > 0:
            scores = softcap * torch.tanh(scores / softcap)
        rows.append(torch.einsum("hc,hcd->hd", torch.softmax(scores, -1), v))
    return torch.stack(rows)


_library.impl("cache_attention", _reference, "CompositeExplicitAutograd")


def cache_attention(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    slots: torch.Tensor,
    positions: torch.Tensor,
    window: int,
    scale: float,
    softcap: float,
) -> torch.Tensor:
    """``q`` ``[T, H, D]`` over ``keys``/``values`` ``[slots, KV, S, D]`` -> ``[T, H, D]``
    (``window`` 0: none; ``softcap`` 0: none)."""
    return torch.ops.furiosa.cache_attention(  # type: ignore[no-any-return]
        q, keys, values, slots, positions, window, scale, softcap
    )
