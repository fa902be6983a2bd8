"""The native engine protocol: what a backend implements (token level only).

Modelled on furiosa-llm's ``NativeEngineLike``. The shared engine does everything at
the text level (templates, detokenization, stop strings, tool parsing) and talks to a
backend only through this protocol: every hook it calls is declared here, and
``NativeEngineBase`` gives the optional ones a default that backends inherit.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ..errors import EngineDeadError, UnsupportedTaskError
from .sampling_params import PoolingParams, SamplingParams
from .tokenizer import Tokenizer

# "score": a cross-encoder (a sequence-classification head) scoring query-document pairs.
Task = Literal["generate", "embed", "score"]


@dataclass
class NativeLogprob:
    """Log-probability of the sampled token plus the top alternatives (ids only)."""

    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class NativeStep:
    """New tokens of one request from one engine step.

    ``finish_reason``: ``"stop"`` (an EOS or stop token id), ``"length"`` (max_tokens or
    the context), ``"abort"`` (aborted in the engine); ``None`` while running.
    """

    new_token_ids: list[int]
    finish_reason: Literal["stop", "length", "abort"] | None = None
    stop_token_id: int | None = None
    logprobs: list[NativeLogprob] | None = None
    num_prompt_tokens: int = 0
    num_cached_tokens: int = 0


@dataclass
class ScorePair:
    """One query-document pair to score, as text and as the model's pair encoding.

    Token-level backends run ``token_ids`` (``[CLS] query [SEP] document [SEP]``, already
    truncated to the model's limit) with ``token_type_ids`` (the segment of each token);
    a backend that scores text itself (a server's ``/score``, furiosa-llm's own score
    prompt) reads ``query`` and ``document``.
    """

    query: str
    document: str
    token_ids: list[int]
    token_type_ids: list[int] | None = None


@dataclass
class NativeStats:
    """Bookkeeping a caller can check for leaks: all zero when idle."""

    running: int
    waiting: int
    used_cache_slots: int
    request_ids: int


@runtime_checkable
class NativeEngine(Protocol):
    """A token-level engine: scheduling, batching, KV cache, sampling, pooling."""

    task: Task
    max_model_len: int
    # A backend that brings its own tokenizer (furiosa-llm's ``LLM`` does) sets it; None:
    # the composition loads the model directory's.
    tokenizer: Tokenizer | None
    supports_images: bool

    def stream_generate(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        request_id: str,
        images: Sequence[Any] = (),
    ) -> AsyncGenerator[NativeStep, None]:
        """Start generating; yields steps until one has a finish reason.

        Closing the generator early aborts the request in the engine. ``images`` (already
        loaded) go with a prompt holding the model's image placeholders; only engines with
        ``supports_images`` get any.
        """
        ...

    async def encode(
        self, prompts: list[list[int]], params: PoolingParams, request_id: str
    ) -> list[list[float]]:
        """One pooled vector per prompt (already truncated to the model's limit)."""
        ...

    async def score(
        self, pairs: list[ScorePair], params: PoolingParams, request_id: str
    ) -> list[float]:
        """One relevance score per pair, in order (engines of task ``"score"``); others
        raise ``UnsupportedTaskError``."""
        ...

    def abort_request(self, request_id: str) -> None:
        """Stop a request: its stream ends with ``finish_reason="abort"``; unknown ids are
        ignored (the request may have just finished)."""
        ...

    def is_alive(self) -> bool: ...

    def check_alive(self) -> None:
        """Raise ``EngineDeadError`` saying why, when the engine no longer serves."""
        ...

    def check_sampling_params(self, params: SamplingParams) -> None:
        """Refuse, before queuing, options this backend cannot honour."""
        ...

    def check_structured_outputs(self, params: SamplingParams) -> None:
        """Compile or translate ``params.structured_outputs`` now, so a bad constraint (or
        one that cannot complete within ``max_tokens``) fails before queuing."""
        ...

    def stats(self) -> NativeStats: ...

    def shutdown(self) -> None: ...


class NativeEngineBase:
    """Defaults for the protocol's optional hooks; backends inherit and override."""

    tokenizer: Tokenizer | None = None
    supports_images: bool = False

    def is_alive(self) -> bool:
        return True

    def check_alive(self) -> None:
        if not self.is_alive():
            raise EngineDeadError("The native engine is not running")

    def check_sampling_params(self, params: SamplingParams) -> None:
        """Every option is honoured (the base's assumption)."""

    def check_structured_outputs(self, params: SamplingParams) -> None:
        """Constraints are checked when the request runs (the base's assumption)."""

    async def score(
        self, pairs: list[ScorePair], params: PoolingParams, request_id: str
    ) -> list[float]:
        """Scoring is a task of its own: an engine that does not serve it refuses."""
        raise UnsupportedTaskError("This engine does not score query-document pairs")


__all__ = [
    "NativeEngine",
    "NativeEngineBase",
    "NativeLogprob",
    "NativeStats",
    "NativeStep",
    "ScorePair",
    "Task",
]
