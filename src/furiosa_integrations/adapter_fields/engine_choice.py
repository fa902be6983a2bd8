"""``EngineChoice``: which engine an adapter talks to, leased from the composition."""

from __future__ import annotations

import os
import weakref
from typing import Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr, SecretStr
from typing_extensions import Self

from ..composition import EngineLease, default_model_name, lease_engine
from ..core import AsyncEngine, Task
from .field_config import FIELD_CONFIG


def _from_env(name: str) -> str | None:
    return os.environ.get(name) or None


def _secret_from_env(name: str) -> SecretStr | None:
    value = _from_env(name)
    return SecretStr(value) if value else None


_TASK_KINDS = {"generate": "a generation", "embed": "an embedding", "score": "a scoring"}


class EngineChoice(BaseModel):
    """Which engine an adapter talks to: the model, backend, device and dtype fields, or an
    explicit ``engine``. Subclasses set ``_task``.

    Engines are shared: every adapter asking for the same model, backend, device and dtype
    holds a lease on one loaded engine. ``close()`` (or leaving a ``with`` block, or the
    adapter being garbage collected) lets go of this adapter's; the last one let go frees
    the engine. An ``engine`` passed in belongs to the caller and is left running.
    """

    model_config = FIELD_CONFIG

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

    base_url: str | None = Field(default_factory=lambda: _from_env("FURIOSA_BASE_URL"))
    """An OpenAI-compatible server to run on instead of in-process (``furiosa-llm serve``,
    vLLM, a load balancer or ``furiosa-llm route`` in front of them), e.g.
    ``"http://localhost:8000/v1"``. Default: ``$FURIOSA_BASE_URL``. Templates, tool calls,
    structured output, stop strings and detokenization still run here; ``model`` then
    names a local copy of the served model's tokenizer (or the served name)."""

    api_key: SecretStr | None = Field(default_factory=lambda: _secret_from_env("FURIOSA_API_KEY"))
    """The server's API key (sent as ``Authorization: Bearer``). Default:
    ``$FURIOSA_API_KEY``. Never shown in reprs, logs, errors or traces."""

    headers: dict[str, str] | None = Field(default=None, repr=False)
    """Extra HTTP headers for every request to ``base_url``."""

    timeout: float | None = 600.0
    """Seconds to wait for the server to connect, answer, or send each next token
    (``None``: no limit). Only with ``base_url``."""

    served_model_name: str | None = None
    """The name the server knows the model by (``--served-model-name``); ``None`` reads
    it from the server's ``/v1/models`` when it serves one model."""

    max_retries: int = 2
    """Retries of a request to ``base_url`` where nothing can be answered twice: the
    connection failed, or the server refused with 429/503 before any token."""

    engine: AsyncEngine | None = Field(default=None, exclude=True)
    """The engine serving this adapter: loaded from the fields above on first use, or given
    (for example one shared with other code), and then the fields above are not used."""

    _task: ClassVar[Task] = "generate"
    # This adapter's leases, by model (a per-call ``model=`` override takes one too).
    _leases: dict[str | None, EngineLease] = PrivateAttr(default_factory=dict)

    def _get_engine(self, model: str | None = None) -> AsyncEngine:
        """The engine for this adapter (loaded on first use, then kept in ``engine``), or
        for ``model`` when a call overrides it."""
        if model is not None and model != self.model:
            return self._load(model)
        if self.engine is None:
            self.engine = self._load(self.model)
            self._engine_loaded(self.engine)
        elif self.engine.task != self._task:
            raise ValueError(
                f"{self.engine.model_name} is not {_TASK_KINDS[self._task]} model "
                f"(task={self.engine.task!r})"
            )
        return self.engine

    def _engine_loaded(self, engine: AsyncEngine) -> None:
        """Called once the adapter's own engine is loaded (LangChain's profile is filled)."""

    def _load(self, model: str | None) -> AsyncEngine:
        remote: dict[str, Any] = {}
        if self.base_url is not None or self.backend == "remote":
            remote = {
                "base_url": self.base_url,
                "api_key": self.api_key.get_secret_value() if self.api_key else None,
                "headers": self.headers,
                "timeout": self.timeout,
                "served_model_name": self.served_model_name,
                "max_retries": self.max_retries,
            }
        lease = self._leases.get(model)
        if lease is not None and not lease.released and lease.engine.is_alive():
            return lease.engine
        if not self._leases:  # the first lease: let go of them all when collected
            weakref.finalize(self, _release_all, self._leases, True)
        lease = lease_engine(
            model,
            task=self._task,
            backend=self.backend,
            device=self.device,
            dtype=self.dtype,
            **remote,
        )
        self._leases[model] = lease
        return lease.engine

    def close(self) -> None:
        """Let go of this adapter's engine: the last adapter to do so frees it (its memory
        and threads). A later call loads it again. An ``engine`` passed in is not touched."""
        leased = {id(lease.engine) for lease in self._leases.values()}
        _release_all(self._leases)
        if self.engine is not None and id(self.engine) in leased:
            self.engine = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _model_label(self, model: Any = None) -> str:
        """The model's name for traces, without loading anything."""
        if isinstance(model, str) and model:
            return model
        if self.engine is not None:
            return self.engine.model_name
        return self.model or self.served_model_name or default_model_name(self._task)


def _release_all(leases: dict[str | None, EngineLease], collected: bool = False) -> None:
    for lease in list(leases.values()):
        lease.release(collected)
    leases.clear()


__all__ = ["EngineChoice"]
