"""One engine per model per process, shared by every adapter that asks for it."""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from .async_engine import AsyncEngine
from .protocol import Task

_lock = threading.Lock()
_engines: dict[tuple[Any, ...], AsyncEngine] = {}


def get_engine(
    model: str | os.PathLike[str] | None = None,
    *,
    task: Task = "generate",
    backend: str = "auto",
    device: str | None = None,
    dtype: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    **engine_options: Any,
) -> AsyncEngine:
    """The shared engine for ``model`` (default: the bundled default for ``task``).

    The same model, task, backend, device, dtype and options give the same instance,
    loaded once; different options get an engine of their own. ``dtype`` (``"float32"``,
    ``"bfloat16"``; ``None`` lets the backend pick) is the torch backend's compute
    precision. ``engine_options`` (``max_model_len``, ``max_num_seqs``, ...) go to the
    native engine.
    """
    from ..backends import create_native_engine, resolve_backend
    from ..models.resolve import resolve_model
    from ..models.tokenizer import load_tokenizer

    resolved = resolve_model(model, task, cache_dir)
    # The bundled defaults have no RNGD build, so "auto" runs them on torch even on an NPU.
    chosen = "torch" if backend == "auto" and resolved.bundled else resolve_backend(backend)
    if dtype is not None:
        engine_options["dtype"] = dtype
    options_key = tuple(sorted((name, repr(value)) for name, value in engine_options.items()))
    key = (str(resolved.path), resolved.task, chosen, device or "auto", options_key)
    with _lock:
        engine = _engines.get(key)
        if engine is not None and engine.is_alive():
            return engine
        native = create_native_engine(resolved, chosen, device, **engine_options)
        # A backend may bring its own tokenizer and image support (furiosa-llm's LLM does).
        tokenizer = getattr(native, "tokenizer", None) or load_tokenizer(resolved.path)
        images = bool(getattr(native, "supports_images", False))
        engine = AsyncEngine(
            native, tokenizer, resolved.name, backend=chosen, supports_images=images
        )
        _engines[key] = engine
        return engine


def clear_engines() -> None:
    """Shut down and forget every shared engine (tests, or to free memory)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.shutdown()


# Stop the engine threads before the interpreter tears down: a daemon thread still inside
# a torch kernel while C++ runtimes unload can abort the process ("terminate called without
# an active exception", exit status 134), which happened here after a big embedding batch.
atexit.register(clear_engines)
