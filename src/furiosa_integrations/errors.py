"""Typed errors of every layer (adapters, composition, the shared engine, backends).

Every error a caller can provoke with bad input is a ``ValueError`` subclass and is
raised before anything is queued, so the engine keeps serving everyone else.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FuriosaError(Exception):
    """Base class of every error raised by furiosa_integrations."""


class InvalidRequestError(FuriosaError, ValueError):
    """A request was rejected before it was queued; the message names the cause."""


class ContextLengthExceededError(InvalidRequestError):
    """The prompt plus the requested completion does not fit the model's context."""

    def __init__(self, *, max_model_len: int, prompt_tokens: int, max_tokens: int | None) -> None:
        self.max_model_len = max_model_len
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        if max_tokens is None:
            msg = (
                f"The prompt has {prompt_tokens} tokens, which exceeds the model's "
                f"context length of {max_model_len} tokens."
            )
        else:
            msg = (
                f"The prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) is "
                f"{prompt_tokens + max_tokens} tokens, which exceeds the model's context "
                f"length of {max_model_len} tokens."
            )
        super().__init__(msg)


class UnknownOptionError(InvalidRequestError, TypeError):
    """An argument nobody knows (a misspelt field or option); the message suggests the
    closest known name. A ``TypeError`` too, as Python's own unexpected-keyword error is."""

    def __init__(self, where: str, unknown: Iterable[str], known: Iterable[str]) -> None:
        self.unknown = sorted(unknown)
        known = sorted(set(known))
        hints, all_close = [], True
        for name in self.unknown:
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
            all_close = all_close and bool(close)
        plural = "s" if len(hints) > 1 else ""
        message = f"Unknown option{plural} {', '.join(hints)} for {where}"
        # A suggestion says enough; without one, the list of what is known helps.
        super().__init__(message if all_close else f"{message}; known: {', '.join(known)}")

    @classmethod
    def check(cls, where: str, given: Iterable[str], known: Iterable[str]) -> None:
        """Raise when ``given`` holds a name outside ``known``."""
        known = set(known)
        unknown = [name for name in given if name not in known]
        if unknown:
            raise cls(where, unknown, known)


class UnsupportedInputError(InvalidRequestError):
    """Input of a kind the model cannot read: an image for a text-only model."""


class UnsupportedTaskError(InvalidRequestError):
    """Generation asked of a pooling model, or pooling of a generation model."""


class DuplicateRequestIdError(InvalidRequestError):
    """A request id that is already in flight was reused."""


class EngineError(FuriosaError, RuntimeError):
    """The native engine failed while serving a request; the message names the cause."""


class EngineDeadError(EngineError):
    """The native engine has stopped (shut down or crashed) and serves no more requests."""


class EngineOverloadedError(FuriosaError, RuntimeError):
    """Too many requests in flight and the engine is set to refuse rather than wait."""


class ModelNotFoundError(FuriosaError, FileNotFoundError):
    """A model could not be found locally; the message says how to install it."""


class BackendUnavailableError(FuriosaError, RuntimeError):
    """The requested backend cannot run on this machine."""


# ---- served backends (backends/remote): what a server, or the way to it, did ----


class ServerRequestError(InvalidRequestError):
    """The server refused the request (HTTP 4xx, or an error event of that kind); the
    message is the server's. ``status_code`` is the HTTP status."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServerAuthenticationError(ServerRequestError):
    """The server refused the credentials (HTTP 401/403): check ``api_key``."""


class ServerError(EngineError):
    """The server failed while serving a request (HTTP 5xx, or an error event mid-stream);
    the message is the server's. ``status_code`` is the HTTP status, when there is one."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServerUnavailableError(ServerError):
    """The server could not be reached or refused to take the request (connection refused,
    HTTP 503), after the retries that were safe."""


class ServerOverloadedError(ServerError, EngineOverloadedError):
    """The server kept answering HTTP 429 (too many requests), after the retries."""


class ServerTimeoutError(ServerError, TimeoutError):
    """The server took longer than ``timeout`` to connect, answer or send the next token."""


class ServerDisconnectedError(ServerError):
    """The connection to the server broke before the response was complete (the server
    died or restarted mid-stream). Tokens already delivered stand; nothing is retried."""


class MalformedResponseError(ServerError):
    """The server sent something that is not the OpenAI-compatible stream it should (a
    line that is not an event, an event that is not JSON, a chunk without token ids)."""


class TokenizerMismatchError(InvalidRequestError):
    """The local tokenizer does not tokenize like the server's (checked on connecting):
    prompts would reach the model as other tokens than the ones the engine rendered."""
