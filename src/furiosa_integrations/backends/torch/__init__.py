"""The torch reference engine: continuous batching on CPU or CUDA, our own forward passes."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ...core import NativeEngine, Task
from ...errors import UnknownOptionError


def create_torch_engine(
    model_path: str | Path, task: Task, device: str | None = None, **options: Any
) -> NativeEngine:
    """Load the model at ``model_path`` and start its engine (on the shared compute thread).

    ``options`` are the engine's keyword arguments (``max_model_len``, ``max_num_seqs``,
    ``dtype``, ...); one it does not take raises ``UnknownOptionError``.
    """
    # The engine modules import torch; they load when an engine is built, not on import.
    engine_cls: type[Any]
    if task in ("embed", "score"):  # encoders: pooled vectors, or a cross-encoder's scores
        from .pooling_engine import TorchPoolingEngine as engine_cls

        options = {**options, "task": task}
    else:
        from .generation_engine import TorchGenerationEngine as engine_cls
    known = [name for name in inspect.signature(engine_cls).parameters if name != "model_path"]
    UnknownOptionError.check(f"the torch {task} engine", options, known)
    engine: NativeEngine = engine_cls(model_path, device=device, **options)
    return engine


__all__ = ["create_torch_engine"]
