"""The torch reference engine: continuous batching on CPU or CUDA."""

from __future__ import annotations

from typing import Any

from ...engine.protocol import NativeEngine
from ...models.resolve import ResolvedModel


def create_torch_engine(
    model: ResolvedModel, device: str | None = None, **options: Any
) -> NativeEngine:
    """Load ``model`` and start its engine thread."""
    if model.task == "embed":
        from .pooling_engine import TorchPoolingEngine

        return TorchPoolingEngine(model.path, device=device, **options)
    from .generation_engine import TorchGenerationEngine

    return TorchGenerationEngine(model.path, device=device, **options)


__all__ = ["create_torch_engine"]
