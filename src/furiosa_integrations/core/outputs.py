"""What the shared engine returns: streamed chunks and aggregated results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "abort", "tool_calls"]


@dataclass
class Usage:
    """Token counts of one request (all ``n`` completions together)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        """Counts of two requests together (a batch)."""
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    def token_counts(self) -> dict[str, int]:
        """The counts as OpenAI names them (``prompt_tokens``, ``completion_tokens``,
        ``total_tokens``): what both frameworks' adapters report."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class TokenLogprob:
    """The log-probability of one generated token and the most likely alternatives."""

    token_id: int
    token: str
    logprob: float
    top_logprobs: list[tuple[int, str, float]] = field(default_factory=list)


@dataclass
class ToolCall:
    """A parsed tool call: ``arguments`` is already a dict."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class GenerationChunk:
    """One streamed step of one completion (``index`` among ``n``).

    ``text`` is only what is new. The last chunk of a completion has ``finish_reason``
    set; the very last chunk of the request carries ``usage``.
    """

    request_id: str
    index: int = 0
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    reasoning_text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None
    stop_reason: str | int | None = None
    usage: Usage | None = None


@dataclass
class Completion:
    """One finished completion, aggregated from its chunks."""

    index: int = 0
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    reasoning_text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None
    stop_reason: str | int | None = None

    def add(self, chunk: GenerationChunk) -> None:
        self.text += chunk.text
        self.token_ids.extend(chunk.token_ids)
        self.reasoning_text += chunk.reasoning_text
        self.tool_calls.extend(chunk.tool_calls)
        if chunk.logprobs is not None:
            if self.logprobs is None:
                self.logprobs = []
            self.logprobs.extend(chunk.logprobs)
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
            self.stop_reason = chunk.stop_reason

    def as_chunk(self, request_id: str = "", usage: Usage | None = None) -> GenerationChunk:
        """The completion as the one chunk its stream's chunks add up to."""
        return GenerationChunk(
            request_id=request_id,
            index=self.index,
            text=self.text,
            token_ids=list(self.token_ids),
            reasoning_text=self.reasoning_text,
            tool_calls=list(self.tool_calls),
            logprobs=self.logprobs,
            finish_reason=self.finish_reason,
            stop_reason=self.stop_reason,
            usage=usage,
        )


class CompletionSums:
    """A request's chunks added up per completion as they come (by index), and the usage
    its last chunk carries, with the index of the completion that chunk belongs to."""

    def __init__(self) -> None:
        self.completions: dict[int, Completion] = {}
        self.usage: Usage | None = None
        self.usage_index = 0

    def add(self, chunk: GenerationChunk) -> None:
        self.completions.setdefault(chunk.index, Completion(chunk.index)).add(chunk)
        if chunk.usage is not None:
            self.usage, self.usage_index = chunk.usage, chunk.index


@dataclass
class GenerationResult:
    """The aggregated result of a request: ``outputs[i]`` is completion ``i``."""

    request_id: str
    outputs: list[Completion]
    usage: Usage
    prompt: str | None = None
    prompt_token_ids: list[int] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The first completion's text."""
        return self.outputs[0].text
