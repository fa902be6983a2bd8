"""furiosa-llm's errors mapped to ours, so callers catch one set of types on every backend."""

from __future__ import annotations

from typing import Any

from ...errors import (
    ContextLengthExceededError,
    EngineDeadError,
    EngineError,
    FuriosaError,
    InvalidRequestError,
)


def map_error(exc: BaseException, native: Any) -> BaseException:
    """Our error for one raised by furiosa-llm (ours pass through unchanged)."""
    if isinstance(exc, FuriosaError) or not isinstance(exc, Exception):
        return exc
    try:
        from furiosa_llm.errors import ContextLengthExceededError as FuriosaContextLength
    except ImportError:  # pragma: no cover - only without furiosa-llm
        FuriosaContextLength = ()  # type: ignore[assignment,misc]
    if isinstance(exc, FuriosaContextLength):
        return ContextLengthExceededError(
            max_model_len=exc.max_model_len,
            prompt_tokens=exc.prompt_tokens,
            max_tokens=exc.max_completion_tokens,
        )
    if isinstance(exc, (ValueError, TypeError)):
        return InvalidRequestError(f"furiosa-llm rejected the request: {exc}")
    alive = True
    try:
        alive = bool(native.is_alive())
    except Exception:
        alive = False
    if not alive:
        return EngineDeadError(f"furiosa-llm's native engine has stopped: {exc!r}")
    return EngineError(f"furiosa-llm's native engine failed: {exc!r}")
