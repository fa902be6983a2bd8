"""A family module's view of a checkpoint: config, lazily loaded tensors, and the
stacking and renaming every family needs to fill a ``DecoderModel``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..loader import load_weights
from .model import Norm


@dataclass
class Checkpoint:
    path: Path
    config: dict[str, Any]
    device: torch.device
    dtype: torch.dtype
    anchor: str  # the tensor whose name prefix (``model.``, ``transformer.``) is stripped
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

    def need_stacked(self, names: list[str]) -> torch.Tensor:
        weight = self.stacked(names)
        if weight is None:
            raise ValueError(f"{self.path}: the checkpoint lacks one of {names}")
        return weight

    def norm(self, name: str, *, offset: float | None = None, fp32: bool = False) -> Norm:
        """A norm's weight (and bias, for LayerNorm). ``offset`` folds Gemma's ``1 + w`` in;
        both it and ``fp32`` keep the weight in fp32 for the ``rms_fp32`` kind."""
        weight = self.need(f"{name}.weight")
        if offset is not None:
            weight = weight.float() + offset
        elif fp32:
            weight = weight.float()
        return Norm(weight, self.get(f"{name}.bias"))

    def lm_head(self, embed: torch.Tensor) -> torch.Tensor:
        """Tied checkpoints (SmolLM2, Gemma, GPT-2) store no lm_head: it is the embedding."""
        head = self.get("lm_head.weight")
        return embed if head is None else head

    def scalar(self, value: float) -> float:
        """``value`` rounded to the model dtype, as transformers' dtype-cast buffers are."""
        return float(torch.tensor(value, dtype=self.dtype))
