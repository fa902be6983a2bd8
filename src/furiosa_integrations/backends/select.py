"""Choose and build the native engine for a model."""

from __future__ import annotations

from typing import Any, Literal

from ..engine.errors import BackendUnavailableError
from ..engine.protocol import NativeEngine
from ..models.resolve import ResolvedModel
from .probe import npu_available

BackendName = Literal["auto", "torch", "furiosa"]


def resolve_backend(backend: str) -> Literal["torch", "furiosa"]:
    """``auto`` means furiosa when an NPU is present, torch otherwise."""
    if backend == "auto":
        return "furiosa" if npu_available() else "torch"
    if backend in ("torch", "furiosa"):
        return backend  # type: ignore[return-value]
    raise ValueError(f"backend must be 'auto', 'torch' or 'furiosa', got {backend!r}")


def create_native_engine(
    model: ResolvedModel,
    backend: str = "auto",
    device: str | None = None,
    **options: Any,
) -> NativeEngine:
    """Build the native engine that serves ``model`` on ``backend``."""
    chosen = resolve_backend(backend)
    if chosen == "furiosa":
        try:
            from .furiosa import create_furiosa_engine  # type: ignore[attr-defined]
        except ImportError as exc:
            raise BackendUnavailableError(
                "The furiosa backend needs furiosa-llm on an RNGD machine: "
                "pip install 'furiosa-integrations[npu]'"
            ) from exc
        return create_furiosa_engine(model, device=device, **options)  # type: ignore[no-any-return]
    from .torch import create_torch_engine

    return create_torch_engine(model, device=device, **options)
