"""Typed errors raised by the shared engine.

Every error a caller can provoke with bad input is a ``ValueError`` subclass and is
raised before anything is queued, so the engine keeps serving everyone else.
"""

from __future__ import annotations


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


class RequestAbortedError(FuriosaError):
    """Raised to a waiting consumer whose request was aborted by someone else."""


class ModelNotFoundError(FuriosaError, FileNotFoundError):
    """A model could not be found locally; the message says how to install it."""


class BackendUnavailableError(FuriosaError, RuntimeError):
    """The requested backend cannot run on this machine."""
