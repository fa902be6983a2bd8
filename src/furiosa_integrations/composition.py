"""Composition: the one place that picks a model and a backend and builds an engine.

    adapters, furiosa_llm_api -> get_engine(model, task, backend, ...)
        models.resolve_model     model argument -> local directory (bundled default, GGUF)
        resolve_backend          "auto" -> furiosa on an RNGD machine, torch elsewhere
                                 (base_url= -> remote: a served model, over HTTP)
        backends.*               the native engine (token level)
        models.load_tokenizer    the tokenizer, unless the backend brings its own
        core.AsyncEngine         the shared engine around them

Engines are shared: one per model, task, backend, device, dtype and options in a process,
loaded on first use and shut down at exit (or by ``clear_engines``). Adapters take a
lease on theirs (``lease_engine``) and release it on ``close()``: the last lease let go
shuts the engine down, unless ``get_engine`` handed it out too (that caller keeps it).
An adapter that is garbage-collected instead of closed lets go after ``KEEP_ALIVE_S``,
as Ollama keeps a model loaded after its last request: code that builds a chat model per
call (``FuriosaChat(max_tokens=n).invoke(...)`` in a function) reuses the loaded engine
instead of loading the model for every call.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any, Literal

from .backends.furiosa import import_llm, load_llm, native_engine_from_llm, npu_available
from .backends.furiosa import llm_parameters as furiosa_llm_parameters
from .backends.remote import DEFAULT_TIMEOUT
from .backends.torch import create_torch_engine
from .core import AsyncEngine, NativeEngine, Task
from .errors import InvalidRequestError, ModelNotFoundError
from .models import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    ResolvedModel,
    infer_task,
    is_default_model,
    load_tokenizer,
    load_transformers_tokenizer,
    resolve_model,
)

BackendName = Literal["auto", "torch", "furiosa", "remote"]
BACKENDS = ("auto", "torch", "furiosa", "remote")

# Re-entrant: a garbage-collected adapter's finalizer releases its lease in whatever this
# thread was doing, loading an engine under the lock included.
_lock = threading.RLock()
_engines: dict[tuple[Any, ...], AsyncEngine] = {}
_leases: dict[tuple[Any, ...], int] = {}  # adapters' leases per engine
_pinned: set[tuple[Any, ...]] = set()  # handed out by get_engine: kept until clear_engines

# Seconds an engine stays loaded after its last adapter was garbage-collected (not closed).
KEEP_ALIVE_S = float(os.environ.get("FURIOSA_KEEP_ALIVE", "300"))
_expiries: dict[tuple[Any, ...], threading.Timer] = {}  # one pending keep-alive per engine


def default_model_name(task: Task) -> str:
    """The bundled default model's name for ``task`` (what traces show before loading)."""
    if task == "score":
        return "cross-encoder"  # no reranker is bundled: the caller names one
    return DEFAULT_CHAT_MODEL if task == "generate" else DEFAULT_EMBEDDING_MODEL


def resolve_backend(
    backend: str, *, bundled: bool = False, base_url: str | None = None
) -> Literal["torch", "furiosa", "remote"]:
    """``auto`` means remote when a ``base_url`` is given, furiosa when an NPU is present,
    torch otherwise; the bundled default models always run on torch (they have no RNGD
    build)."""
    if base_url is not None and backend not in ("auto", "remote"):
        raise InvalidRequestError(
            f"base_url is for backend='remote' (or 'auto'), not backend={backend!r}"
        )
    if backend == "remote" and base_url is None:
        raise InvalidRequestError(
            "backend='remote' needs base_url= (or FURIOSA_BASE_URL): the server's URL"
        )
    if base_url is not None:
        return "remote"
    if backend == "auto":
        return "furiosa" if not bundled and npu_available() else "torch"
    if backend in ("torch", "furiosa"):
        return backend  # type: ignore[return-value]
    raise InvalidRequestError(f"backend must be one of {BACKENDS}, got {backend!r}")


def refuse_bundled_on_furiosa(model_name: str) -> None:
    """The bundled defaults have no RNGD build: say what to pass instead."""
    raise ModelNotFoundError(
        f"The bundled default model {model_name!r} has no RNGD build. On the furiosa backend "
        "pass a furiosa-ai model id or a local model directory with its .fxb artifact, or use "
        "backend='torch'."
    )


def get_engine(
    model: str | os.PathLike[str] | None = None,
    *,
    task: Task = "generate",
    backend: str = "auto",
    device: str | None = None,
    dtype: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    served_model_name: str | None = None,
    **engine_options: Any,
) -> AsyncEngine:
    """The shared engine for ``model`` (default: the bundled default for ``task``).

    The same model, task, backend, device, dtype and options give the same instance,
    loaded once; different options get an engine of their own. ``dtype`` (``"float32"``,
    ``"bfloat16"``; ``None`` lets the backend pick) is the torch backend's compute
    precision. ``engine_options`` go to the native engine (torch: ``max_model_len``,
    ``max_num_seqs``, ...; furiosa: furiosa-llm ``LLM`` arguments such as ``devices``);
    an option the backend does not know raises ``UnknownOptionError``. An engine handed
    out here stays loaded until ``clear_engines`` (adapters lease theirs instead).

    ``base_url`` (an OpenAI-compatible server: ``furiosa-llm serve``, vLLM, a router)
    serves the model remotely; see ``_remote_engine``.
    """
    key, engine = _shared_engine(
        model,
        task=task,
        backend=backend,
        device=device,
        dtype=dtype,
        cache_dir=cache_dir,
        base_url=base_url,
        api_key=api_key,
        headers=headers,
        timeout=timeout,
        served_model_name=served_model_name,
        **engine_options,
    )
    with _lock:
        _pinned.add(key)
    return engine


class EngineLease:
    """An adapter's hold on a shared engine; ``release`` lets go of it (once)."""

    def __init__(self, key: tuple[Any, ...], engine: AsyncEngine) -> None:
        self.key = key
        self.engine = engine
        self.released = False

    def release(self, collected: bool = False) -> None:
        """Let go; the last lease of an engine that ``get_engine`` never handed out shuts
        it down and forgets it, so the next user loads it anew: at once on ``close()``,
        ``KEEP_ALIVE_S`` later when the adapter was ``collected`` (unless leased again)."""
        # A collected adapter's finalizer runs wherever the GC does: on the compute thread
        # too, in the middle of a model load that a ``lease_engine`` holding ``_lock`` waits
        # for. Waiting for ``_lock`` there would deadlock: let go from a thread of its own.
        if not self._let_go(collected, blocking=not collected):
            threading.Thread(
                target=self._let_go, args=(collected,), name="furiosa-release", daemon=True
            ).start()

    def _let_go(self, collected: bool, blocking: bool = True) -> bool:
        """Count this lease out and free the engine if it was the last; False when
        ``blocking`` is off and ``_lock`` is taken (nothing done)."""
        if not _lock.acquire(blocking=blocking):
            return False
        try:
            free = self._drop(collected)
        finally:
            _lock.release()
        if free:
            _free(self.key, self.engine)
        return True

    def _drop(self, collected: bool) -> bool:
        """Under ``_lock``: count this lease out; True when the engine is to be freed now."""
        if self.released:
            return False
        self.released = True
        left = _leases.get(self.key, 1) - 1
        if left > 0:
            _leases[self.key] = left
            return False
        _leases.pop(self.key, None)
        if collected and KEEP_ALIVE_S > 0:
            _cancel_expiry(self.key)
            timer = threading.Timer(KEEP_ALIVE_S, _free, (self.key, self.engine))
            timer.daemon = True
            _expiries[self.key] = timer
            timer.start()
            return False
        return True


def _free(key: tuple[Any, ...], engine: AsyncEngine) -> None:
    """Shut ``engine`` down and forget it, unless it was leased again, is pinned by
    ``get_engine``, or is no longer the shared one for ``key``."""
    with _lock:
        _expiries.pop(key, None)
        if _leases.get(key) or key in _pinned or _engines.get(key) is not engine:
            return
        del _engines[key]
    engine.shutdown()


def _cancel_expiry(key: tuple[Any, ...]) -> None:
    """Under ``_lock``: the engine is leased again (or freed): its keep-alive timer goes,
    so building and dropping adapters in a loop keeps one timer thread, not one per call."""
    timer = _expiries.pop(key, None)
    if timer is not None:
        timer.cancel()


def lease_engine(model: str | os.PathLike[str] | None = None, **choice: Any) -> EngineLease:
    """``get_engine``'s shared engine (the same arguments), held until the lease is
    released: what adapters use, so the last one to let go frees the engine."""
    with _lock:  # one step: no other lease's release can free the engine in between
        key, engine = _shared_engine(model, **choice)
        _leases[key] = _leases.get(key, 0) + 1
        _cancel_expiry(key)
    return EngineLease(key, engine)


def _shared_engine(
    model: str | os.PathLike[str] | None,
    *,
    task: Task = "generate",
    backend: str = "auto",
    device: str | None = None,
    dtype: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    served_model_name: str | None = None,
    **engine_options: Any,
) -> tuple[tuple[Any, ...], AsyncEngine]:
    """The shared engine for these arguments and its key, loaded on first use."""
    if base_url is not None or backend == "remote":
        resolve_backend(backend, base_url=base_url)  # refuses a contradiction
        if device is not None or dtype is not None:
            raise InvalidRequestError("device and dtype are the server's choice with base_url")
        remote = {"api_key": api_key, "headers": headers, "timeout": timeout}
        return _remote_engine(
            model, task, base_url, served_model_name, cache_dir, remote, engine_options
        )
    resolved = resolve_model(model, task, cache_dir)
    chosen = resolve_backend(backend, bundled=resolved.bundled)
    if dtype is not None:
        engine_options["dtype"] = dtype
    options_key = tuple(sorted((name, repr(value)) for name, value in engine_options.items()))
    key = (str(resolved.path), resolved.task, chosen, device or "auto", options_key)
    with _lock:
        engine = _engines.get(key)
        if engine is not None and engine.is_alive():
            return key, engine
        native = _native_engine(resolved, chosen, device, engine_options)
        tokenizer = native.tokenizer or load_tokenizer(resolved.path)
        engine = AsyncEngine(native, tokenizer, resolved.name, backend=chosen)
        _engines[key] = engine
        return key, engine


def _remote_engine(
    model: str | os.PathLike[str] | None,
    task: Task,
    base_url: str | None,
    served_model_name: str | None,
    cache_dir: str | os.PathLike[str] | None,
    connection: dict[str, Any],
    options: dict[str, Any],
) -> tuple[tuple[Any, ...], AsyncEngine]:
    """The shared engine of a served model: one per server, connection settings, served
    name, task and tokenizer source (the credentials in the key as a digest, never clear)."""
    assert base_url is not None
    from .backends.remote.connect import connect_remote, remote_config  # httpx: only here

    max_model_len = options.pop("max_model_len", None)
    config = remote_config(base_url, **connection, **options)
    key = ("remote", config.sharing_key(), served_model_name, task, str(model), max_model_len)
    with _lock:
        engine = _engines.get(key)
        if engine is not None and engine.is_alive():
            return key, engine
        native = connect_remote(
            config,
            task=task,
            model=model,
            served_model_name=served_model_name,
            cache_dir=cache_dir,
            max_model_len=max_model_len,
        )
        assert native.tokenizer is not None
        engine = AsyncEngine(native, native.tokenizer, native.served_model_name, backend="remote")
        _engines[key] = engine
        return key, engine


def _native_engine(
    resolved: ResolvedModel, backend: str, device: str | None, options: dict[str, Any]
) -> NativeEngine:
    if backend == "furiosa":
        if resolved.bundled:
            refuse_bundled_on_furiosa(resolved.name)
        if device is not None:
            options.setdefault("devices", device)
        return native_engine_from_llm(load_llm(str(resolved.path), options))
    return create_torch_engine(resolved.path, resolved.task, device, **options)


def engine_from_furiosa_llm(llm: Any) -> AsyncEngine:
    """An engine (not shared) over an existing furiosa-llm ``LLM``: its native engine,
    tokenizer and limits."""
    native = native_engine_from_llm(llm)
    name = str(
        getattr(llm, "served_model_name", None) or getattr(llm, "model_id_or_path", "furiosa")
    )
    return AsyncEngine(native, llm.tokenizer, name, backend="furiosa")


def furiosa_llm_class() -> Any:
    """furiosa-llm's ``LLM`` class (``BackendUnavailableError`` where it is not installed)."""
    return import_llm()


def with_tokenizer(engine: AsyncEngine, tokenizer: str | None, *, slow: bool) -> AsyncEngine:
    """The same native engine behind another tokenizer (a light engine of its own)."""
    source = tokenizer or engine.tokenizer.name_or_path
    other = load_transformers_tokenizer(source, slow=slow)
    return AsyncEngine(engine.native, other, engine.model_name, backend=engine.backend)


def clear_engines() -> None:
    """Shut down and forget every shared engine (tests, or to free memory)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
        _leases.clear()
        _pinned.clear()
        for key in list(_expiries):
            _cancel_expiry(key)
    for engine in engines:
        engine.shutdown()


# Stop the engines (and with the last, the torch compute thread) before the interpreter
# tears down: a daemon thread still inside a torch kernel while C++ runtimes unload can
# abort the process ("terminate called without an active exception", exit status 134),
# which happened here after a big embedding batch.
atexit.register(clear_engines)


__all__ = [
    "BACKENDS",
    "BackendName",
    "EngineLease",
    "clear_engines",
    "default_model_name",
    "engine_from_furiosa_llm",
    "furiosa_llm_class",
    "furiosa_llm_parameters",
    "get_engine",
    "infer_task",
    "is_default_model",
    "lease_engine",
    "refuse_bundled_on_furiosa",
    "resolve_backend",
    "with_tokenizer",
]
