"""The native engine protocol: what a backend implements (token level only).

Modelled on furiosa-llm's ``NativeEngineLike``. The shared engine does everything at
the text level (templates, detokenization, stop strings, tool parsing) and talks to a
backend only through this protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from .sampling import PoolingParams, SamplingParams

Task = Literal["generate", "embed"]


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

    def stream_generate(
        self, prompt_token_ids: list[int], params: SamplingParams, request_id: str
    ) -> AsyncIterator[NativeStep]:
        """Start generating; yields steps until one has a finish reason.

        Closing the iterator early aborts the request in the engine.
        """
        ...

    async def encode(
        self, prompts: list[list[int]], params: PoolingParams, request_id: str
    ) -> list[list[float]]:
        """One pooled vector per prompt (already truncated to the model's limit)."""
        ...

    def abort_request(self, request_id: str) -> None:
        """Stop a request: its stream ends with ``finish_reason="abort"``."""
        # Unknown ids are ignored: the request may have just finished.
        ...

    def is_alive(self) -> bool: ...

    def stats(self) -> NativeStats: ...

    def shutdown(self) -> None: ...
