"""Rotary position embeddings: cos/sin tables and their application.

Plain RoPE (with partial rotary dims) is computed here. Static scaled variants (linear,
llama3, yarn) take their frequencies from transformers' own initialisers, read once at
load, so each stays exactly what the model was trained with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .model import Rotary


def rotary(
    params: dict[str, Any],
    head_dim: int,
    device: torch.device,
    path: Path,
    layer_type: str | None = None,
) -> Rotary:
    dim = int(head_dim * float(params.get("partial_rotary_factor", 1.0)))
    if params["rope_type"] == "default":
        steps = torch.arange(0, dim, 2, dtype=torch.float, device=device) / dim
        return Rotary(1.0 / (float(params["rope_theta"]) ** steps), 1.0, dim)
    # Lazy: only scaled-RoPE checkpoints pay for transformers' config module.
    from transformers import AutoConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = AutoConfig.from_pretrained(str(path))
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    init = ROPE_INIT_FUNCTIONS[params["rope_type"]]
    # transformers keys per-layer-type parameters by type (Gemma 3), older configs included.
    per_type = getattr(config, "rope_parameters", None) or {}
    if layer_type is not None and isinstance(per_type.get(layer_type), dict):
        inv_freq, scaling = init(config, device, layer_type=layer_type)
    else:
        inv_freq, scaling = init(config, device)
    return Rotary(inv_freq.float().to(device), float(scaling), 2 * inv_freq.shape[-1])


def cos_sin(
    table: Rotary, positions: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin for ``positions``, shaped ``[T, 1, rotary_dim]`` to broadcast
    over heads. The sin's first half is negated: rotating half of ``x`` is then
    ``roll(x) * sin`` (one roll, no slices, negation or concatenation per layer)."""
    freqs = positions[:, None].float() * table.inv_freq[None, :]
    cos, sin = freqs.cos(), freqs.sin()
    if table.attention_scaling != 1.0:
        cos, sin = cos * table.attention_scaling, sin * table.attention_scaling
    cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)
    return cos.to(dtype).unsqueeze(1), sin.to(dtype).unsqueeze(1)


class RotaryTables:
    """cos and signed sin of every position up to the furthest one asked for, per RoPE
    table: a step looks its positions' rows up instead of computing them (at one row on a
    2-core Zen 4: 91 -> 56 us a step, the caches cold after the weights streamed past).
    Rows are ``cos_sin``'s own values, element by element, so prefill and decode read the
    same numbers for a position. Grown by doubling (from 256 positions); a 4,096-position
    table of 64-dim heads is 2 MB."""

    def __init__(self, tables: list[Rotary], dtype: torch.dtype) -> None:
        self.tables, self.dtype = tables, dtype
        self.cos: list[torch.Tensor] = []
        self.sin: list[torch.Tensor] = []
        self.length = 0

    def __call__(self, positions: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if not self.tables:
            return [], []
        # On a GPU the lookup's bound check would wait for the device; compute there instead.
        if positions.numel() == 0 or positions.device.type != "cpu":
            pairs = [cos_sin(table, positions, self.dtype) for table in self.tables]
            return [cos for cos, _ in pairs], [sin for _, sin in pairs]
        furthest = int(positions.max())
        if furthest >= self.length:
            self._grow(max(furthest + 1, 2 * self.length, 256), positions.device)
        return (
            [cos.index_select(0, positions) for cos in self.cos],
            [sin.index_select(0, positions) for sin in self.sin],
        )

    def _grow(self, length: int, device: torch.device) -> None:
        every = torch.arange(length, device=device)
        pairs = [cos_sin(table, every, self.dtype) for table in self.tables]
        self.cos, self.sin = [cos for cos, _ in pairs], [sin for _, sin in pairs]
        self.length = length


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the leading ``rotary_dim`` dims of ``x`` ``[T, H, D]``; the rest pass through.

    transformers' ``x * cos + rotate_half(x) * sin`` (to a rounding: one fused multiply-add):
    ``rotate_half(x)`` is ``roll(x)`` with its first half negated, a sign ``cos_sin`` puts
    in the sin."""
    dim = cos.shape[-1]
    if dim == x.shape[-1]:
        return torch.addcmul(x * cos, x.roll(dim // 2, -1), sin)
    rot, rest = x[..., :dim], x[..., dim:]
    return torch.cat((torch.addcmul(rot * cos, rot.roll(dim // 2, -1), sin), rest), dim=-1)
