"""A family module's view of a checkpoint: config, lazily loaded tensors, and the
stacking and renaming every family needs to fill a ``DecoderModel``.

Linear weights go through ``linear``: where an earlier load kept a weight's GGUF groups
(``groups_cache``), it hands those out and the fp32 tensors behind them are never read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..kernels.grouped_linear import GroupedWeight, weight_shape
from ..loader import load_weights
from ..packed_linear import Weight
from .model import Norm


@dataclass
class Checkpoint:
    path: Path
    config: dict[str, Any]
    device: torch.device
    dtype: torch.dtype
    anchor: str  # the tensor whose name prefix (``model.``, ``transformer.``) is stripped
    # A linear weight's groups kept by an earlier load, by ``linear``'s key.
    groups: Mapping[str, GroupedWeight] = field(default_factory=dict, repr=False)
    # The linear weights read as fp32 this time, by the same key (for the cache to fill).
    read_linears: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    _tensors: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def tensors(self) -> dict[str, torch.Tensor]:
        """Loaded on first use, so a config a family cannot run costs no weight reads."""
        if self._tensors is None:
            self._tensors = load_weights(self.path, self.device, self.dtype, self.anchor)
        return self._tensors

    def get(self, name: str) -> torch.Tensor | None:
        return self.tensors.get(name)

    def need(self, name: str) -> torch.Tensor:
        tensor = self.tensors.get(name)
        if tensor is None:
            raise ValueError(f"{self.path}: the checkpoint lacks {name!r}")
        return tensor

    def stacked(self, names: list[str], suffix: str = "weight") -> torch.Tensor | None:
        """``names``' tensors concatenated (q/k/v, gate/up), or None if any is missing."""
        parts = [self.tensors.get(f"{name}.{suffix}") for name in names]
        if any(part is None for part in parts):
            return None
        return torch.cat(parts)  # type: ignore[arg-type]

    def linear(self, names: list[str]) -> Weight:
        """A linear layer's weight: ``names``' tensors stacked (one name: that tensor), or
        the groups an earlier load kept of it."""
        key = "+".join(names)
        parts = [self.need(f"{name}.weight") for name in names]  # mapped: shapes cost no read
        found = self._kept(key, sum(p.shape[0] for p in parts), parts[0].shape[-1])
        if found is not None:
            return found
        weight = torch.cat(parts) if len(parts) > 1 else parts[0]
        self.read_linears[key] = weight
        return weight

    def _kept(self, key: str, rows: int, width: int) -> GroupedWeight | None:
        """The groups kept of weight ``key``, if they have its shape."""
        found = self.groups.get(key)
        if found is None or weight_shape(found) != (rows, width):
            return None
        return found

    def norm(self, name: str, *, offset: float | None = None, fp32: bool = False) -> Norm:
        """A norm's weight (and bias, for LayerNorm). ``offset`` folds Gemma's ``1 + w`` in;
        both it and ``fp32`` keep the weight in fp32 for the ``rms_fp32`` kind."""
        weight = self.need(f"{name}.weight")
        if offset is not None:
            weight = weight.float() + offset
        elif fp32:
            weight = weight.float()
        return Norm(weight, self.get(f"{name}.bias"))

    def lm_head(self, embed: torch.Tensor) -> Weight:
        """Tied checkpoints (SmolLM2, Gemma, GPT-2) store no lm_head: it is the embedding
        (``embed`` stays a plain table either way: the head is packed apart from it)."""
        if self.get("lm_head.weight") is not None:
            return self.linear(["lm_head"])
        found = self._kept("lm_head", *embed.shape)
        if found is not None:
            return found
        self.read_linears["lm_head"] = embed
        return embed

    def scalar(self, value: float) -> float:
        """``value`` rounded to the model dtype, as transformers' dtype-cast buffers are."""
        return float(torch.tensor(value, dtype=self.dtype))
