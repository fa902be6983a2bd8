"""What a server or the way to it did, as errors of our hierarchy, with the server's message.

    HTTP 401/403                 -> ServerAuthenticationError   (an InvalidRequestError)
    other 4xx, 4xx error events  -> ServerRequestError          (an InvalidRequestError)
    HTTP 429                     -> ServerOverloadedError       (an EngineOverloadedError)
    HTTP 503, connection refused -> ServerUnavailableError      (an EngineError, as all below)
    other 5xx, 5xx error events  -> ServerError
    timeouts                     -> ServerTimeoutError          (also a TimeoutError)
    a connection cut mid-answer  -> ServerDisconnectedError

Servers answer errors in three shapes: OpenAI's ``{"error": {"message": ...}}``,
furiosa-llm's / vLLM's ``{"object": "error", "message": ...}`` and FastAPI's
``{"detail": ...}``; plain text too.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from ...errors import (
    FuriosaError,
    ServerAuthenticationError,
    ServerDisconnectedError,
    ServerError,
    ServerOverloadedError,
    ServerRequestError,
    ServerTimeoutError,
    ServerUnavailableError,
)
from .config import RemoteConfig

_MAX_MESSAGE = 2000  # characters of a server's message kept in ours


def server_message(body: bytes | str | Any) -> str:
    """The human-readable message in an error body, whatever its shape."""
    data: Any = body
    if isinstance(body, (bytes, str)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            data = json.loads(text)
        except ValueError:
            return text.strip()[:_MAX_MESSAGE] or "(empty response)"
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:_MAX_MESSAGE]
        if isinstance(inner, str):
            return inner[:_MAX_MESSAGE]
        detail = data.get("detail")
        if isinstance(detail, str):
            return detail[:_MAX_MESSAGE]
        if detail is not None:  # FastAPI's validation errors: a list of dicts
            return json.dumps(detail)[:_MAX_MESSAGE]
    return json.dumps(data)[:_MAX_MESSAGE]


def error_for_status(status: int, message: str, config: RemoteConfig, route: str) -> FuriosaError:
    """Our error for an HTTP error status from ``route`` of the server."""
    text = config.scrub(f"{config.display_url}{route} answered HTTP {status}: {message}")
    if status in (401, 403):
        return ServerAuthenticationError(
            f"{text} (check api_key / FURIOSA_API_KEY)", status_code=status
        )
    if status == 429:
        return ServerOverloadedError(text, status_code=status)
    if status == 503:
        return ServerUnavailableError(text, status_code=status)
    if 400 <= status < 500:
        return ServerRequestError(text, status_code=status)
    return ServerError(text, status_code=status)


def error_from_event(payload: dict[str, Any], config: RemoteConfig, route: str) -> FuriosaError:
    """Our error for an error event in a stream (``data: {"error": {...}}``): the server
    failed after it had answered 200, so the status is the event's ``code``."""
    inner = payload.get("error")
    code = inner.get("code") if isinstance(inner, dict) else None
    status = code if isinstance(code, int) else 500
    return error_for_status(status, server_message(payload), config, f"{route} (mid-stream)")


def error_from_transport(exc: httpx.HTTPError, config: RemoteConfig, route: str) -> FuriosaError:
    """Our error for a failure of the connection itself (no HTTP status)."""
    where = config.display_url + route
    detail = config.scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, httpx.ConnectTimeout):
        return ServerTimeoutError(f"Timed out connecting to {where}: {detail}")
    if isinstance(exc, (httpx.ConnectError, httpx.PoolTimeout)):
        return ServerUnavailableError(f"Cannot reach {where}: {detail}")
    if isinstance(exc, httpx.TimeoutException):
        return ServerTimeoutError(f"{where} did not answer within the timeout: {detail}")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return ServerDisconnectedError(
            f"The connection to {where} broke before the response was complete: {detail}"
        )
    return ServerError(f"Request to {where} failed: {detail}")


def is_safe_to_retry(exc: httpx.HTTPError) -> bool:
    """Failures where the request certainly never reached the server."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


RETRY_STATUSES = frozenset({429, 503})  # the server refused before doing anything


__all__ = [
    "RETRY_STATUSES",
    "error_for_status",
    "error_from_event",
    "error_from_transport",
    "is_safe_to_retry",
    "server_message",
]
