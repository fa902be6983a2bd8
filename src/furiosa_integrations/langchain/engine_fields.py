"""Which engine an adapter talks to: the model, backend and device fields, or an explicit engine.

Shared by ``FuriosaChat``, ``FuriosaLLM`` and ``FuriosaEmbeddings``. The engine comes from
``engine.registry.get_engine``, so every adapter asking for the same model, backend and
device shares one loaded engine. Nothing is loaded until the first request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ..engine import AsyncEngine, GenerationChunk, get_engine
from ..engine.protocol import Task
from ..models.resolve import DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL


class EngineFields(BaseModel):
    """Fields that choose the engine; subclasses set ``_task``."""

    model_config = ConfigDict(
        arbitrary_types_allowed=True, protected_namespaces=(), use_attribute_docstrings=True
    )

    model: str | None = None
    """Model to serve: a local transformers model directory or ``.gguf`` file.

    ``None`` (the default) uses the bundled default model of the class's task
    (SmolLM2-135M-Instruct for generation, all-MiniLM-L6-v2 for embeddings). Nothing is
    ever downloaded."""

    backend: str = "auto"
    """``"auto"`` (the furiosa backend on an RNGD machine, torch otherwise), ``"torch"`` or
    ``"furiosa"``."""

    device: str | None = None
    """Device for the torch backend (``"cpu"``, ``"cuda"``, ``"cuda:1"``) or the NPU for the
    furiosa backend; ``None`` picks one."""

    dtype: str | None = None
    """Compute precision on the torch backend: ``"float32"`` or ``"bfloat16"``. ``None``
    picks: chat models fp32 on CPU and bf16 on CUDA; embedding models bf16 matmuls on CPUs
    with AMX and on CUDA, fp32 elsewhere."""

    engine: AsyncEngine | None = Field(default=None, exclude=True)
    """An engine to use instead of ``model``/``backend``/``device``/``dtype`` (for example one
    shared with other code). When set, the fields above are not used."""

    _task: ClassVar[Task] = "generate"
    _loaded: AsyncEngine | None = PrivateAttr(default=None)

    def _get_engine(self, model: str | None = None) -> AsyncEngine:
        """The engine for this adapter, or for ``model`` when a call overrides it."""
        if model is not None and model != self.model:
            return get_engine(
                model, task=self._task, backend=self.backend, device=self.device, dtype=self.dtype
            )
        if self.engine is not None:
            return self.engine
        if self._loaded is None:
            self._loaded = get_engine(
                self.model,
                task=self._task,
                backend=self.backend,
                device=self.device,
                dtype=self.dtype,
            )
        return self._loaded

    def _model_label(self, model: Any = None) -> str:
        """The model's name for traces, without loading anything."""
        if isinstance(model, str) and model:
            return model
        if self.engine is not None:
            return self.engine.model_name
        if self.model:
            return self.model
        return DEFAULT_CHAT_MODEL if self._task == "generate" else DEFAULT_EMBEDDING_MODEL


def sync_stream(stream: Iterator[GenerationChunk]) -> Generator[GenerationChunk, None, None]:
    """``engine.stream_sync``'s iterator, typed as the generator it is: closing it early
    aborts the request."""
    return cast("Generator[GenerationChunk, None, None]", stream)


def async_stream(stream: AsyncIterator[GenerationChunk]) -> AsyncGenerator[GenerationChunk, None]:
    """``engine.stream``'s iterator, typed as the async generator it is."""
    return cast("AsyncGenerator[GenerationChunk, None]", stream)
