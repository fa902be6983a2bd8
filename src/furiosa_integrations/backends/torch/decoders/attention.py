"""Attention over the slot KV cache, for one decode step or one packed prefill.

Each step builds its masks once (one per distinct sliding window) and every layer reuses
them. A sliding-window layer reads only the cache columns some row can still see; the
cache itself keeps every position, so prefix sharing and slot moves are the same for
every family.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..kernels.cache_attention import cache_attention
from ..kv_cache import SlotKVCache
from ..layers import soft_cap
from .interface import PrefillSegment
from .model import LayerWeights


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float | None,
    softcap: float | None,
) -> torch.Tensor:
    """``q`` ``[B, H, T, D]`` over ``k``/``v`` ``[B, KV, S, D]``; ``mask`` is additive (0 where
    a query may attend, -inf elsewhere: see ``additive``), ``None`` means causal, ``T == S``."""
    if softcap is None:
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None, scale=scale, enable_gqa=True
        )
    # SDPA cannot soft-cap scores (Gemma 2): compute them as transformers' eager path does.
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    factor = q.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(q, k.transpose(-1, -2)) * factor
    scores = soft_cap(scores, softcap)
    if mask is None:
        causal = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=q.device).tril()
        mask = additive(causal, scores.dtype)
    scores = scores + mask
    return torch.matmul(torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype), v)


def additive(visible: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A bool visibility mask in SDPA's additive form, built once per step: handed a bool
    mask, SDPA converts it inside every layer's call (two extra ops per layer)."""
    mask = torch.zeros(visible.shape, dtype=dtype, device=visible.device)
    return mask.masked_fill_(~visible, float("-inf"))


def _visible(rows: torch.Tensor, low: int, end: int, window: int | None) -> torch.Tensor:
    """``[R, end - low]``: which cache columns ``low..end-1`` each row position may see."""
    cols = torch.arange(low, end, device=rows.device)
    allowed = cols[None, :] <= rows[:, None]
    if window is not None:
        allowed &= cols[None, :] > rows[:, None] - window
    return allowed


class DecodeAttention:
    """One batched decode step's view of the cache: row ``b`` is slot ``b``, its new token
    at ``positions[b]``. The layers' loop (``LayerStack.decode``) writes each layer's K/V at
    ``where`` and attends over columns ``lows[w]..span-1`` with ``masks[w]``, ``w`` being the
    layer's index in ``windows``. Our kernels' attention (``cache_attention``) reads only
    the positions: with ``masks=False`` there are no columns or masks (~0.1 ms a step)."""

    def __init__(
        self,
        cache: SlotKVCache,
        positions: torch.Tensor,
        windows: list[int | None],
        masks: bool = True,
    ) -> None:
        self.cache = cache
        self.batch = positions.shape[0]
        # scatter_ along the position axis writes one K/V per row in place (index_put is slow).
        self.where = positions.view(self.batch, 1, 1, 1).expand(
            self.batch, cache.num_kv_heads, 1, cache.head_dim
        )
        self.lows: list[int] = []
        self.masks: list[torch.Tensor] = []
        self.span = 0
        if not masks:
            return
        self.span = int(positions.max().item()) + 1
        first = int(positions.min().item())
        for window in windows:
            low = 0 if window is None else max(0, first - window + 1)
            mask = additive(_visible(positions, low, self.span, window), cache.dtype)
            self.lows.append(low)
            self.masks.append(mask[:, None, None, :])  # [B, 1, 1, S]


class PrefillAttention:
    """Packed new tokens of several sequences; each attends within its own slot."""

    def __init__(
        self,
        cache: SlotKVCache,
        segments: list[PrefillSegment],
        windows: set[int | None],
        softcap: float | None,
        exact: bool = False,
    ) -> None:
        self.cache = cache
        self.segments = segments
        self.softcap = softcap
        # exact: every row through ``cache_attention`` on its own (``cached``), its K/V
        # written by the caller (``LayerStack.query_into_cache``); else ``__call__``
        self.exact = exact
        if exact:
            device = cache.device
            self.slots = torch.cat(
                [torch.full((s.length,), s.slot, device=device) for s in segments]
            )
            self.positions = torch.cat(
                [torch.arange(s.position, s.position + s.length, device=device) for s in segments]
            )
        # Per segment and window: the first cache column read, and the mask (None: causal).
        self.views: list[dict[int | None, tuple[int, torch.Tensor | None]]] = []
        for s in [] if exact else segments:
            end = s.position + s.length
            rows = torch.arange(s.position, end, device=cache.device)
            views: dict[int | None, tuple[int, torch.Tensor | None]] = {}
            for window in windows:
                low = 0 if window is None else max(0, s.position - window + 1)
                if s.position == 0 and (window is None or window >= s.length):
                    views[window] = (0, None)  # plain causal over the new tokens
                else:
                    mask = additive(_visible(rows, low, end, window), cache.dtype)
                    views[window] = (low, mask[None, None])
            self.views.append(views)

    def __call__(
        self, index: int, layer: LayerWeights, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        cache = self.cache
        outs = []
        for s in self.segments:
            end = s.position + s.length
            new = slice(s.start, s.start + s.length)
            cache.keys[index, s.slot, :, s.position : end] = k[new].transpose(0, 1)
            cache.values[index, s.slot, :, s.position : end] = v[new].transpose(0, 1)
        for s, views in zip(self.segments, self.views, strict=True):
            end = s.position + s.length
            new = slice(s.start, s.start + s.length)
            low, mask = views[layer.window]
            qs = q[new].transpose(0, 1).unsqueeze(0)
            ks = cache.keys[index, s.slot : s.slot + 1, :, low:end]
            vs = cache.values[index, s.slot : s.slot + 1, :, low:end]
            o = attention(qs, ks, vs, mask, layer.scale, self.softcap)
            outs.append(o[0].transpose(0, 1).reshape(s.length, -1))
        return torch.cat(outs)

    def cached(self, index: int, layer: LayerWeights, q: torch.Tensor) -> torch.Tensor:
        """The exact path's attention for ``q`` ``[T, H, D]`` once layer ``index``'s new K/V
        are in the cache (``LayerStack.query_into_cache`` writes them)."""
        scale = q.shape[-1] ** -0.5 if layer.scale is None else layer.scale
        out = cache_attention(
            q,
            self.cache.keys[index],
            self.cache.values[index],
            self.slots,
            self.positions,
            layer.window or 0,
            scale,
            self.softcap or 0.0,
        )
        return out.reshape(q.shape[0], -1)
