"""Sampling and pooling options, in the vLLM / furiosa-llm shape.

Every option is checked when the object is built and again when a request is submitted
(``verify``), so an invalid value raises a ``ValueError`` naming the option before any
work is queued.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InvalidRequestError
from .structured_outputs import StructuredOutputsParams


class RequestOutputKind(enum.Enum):
    """What each streamed output carries (vLLM's names)."""

    CUMULATIVE = 0  # the whole text so far
    DELTA = 1  # only what is new
    FINAL_ONLY = 2  # one output at the end


def _bad(option: str, value: object, must: str) -> InvalidRequestError:
    return InvalidRequestError(f"{option} must be {must}, got {value!r}")


def check_token_ids(value: object, what: str, *, allow_empty: bool = False) -> list[int]:
    """``value`` as a list of token ids (ints >= 0), or an ``InvalidRequestError`` naming
    ``what``: the one check for prompt ids, pooling inputs and stop token ids."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        ids = list(value)
        if (ids or allow_empty) and all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ids
        ):
            return ids
    must = "a list of token ids (ints >= 0)" if allow_empty else "a non-empty list of ints >= 0"
    raise _bad(what, value, must)


@dataclass
class SamplingParams:
    """Options of one generation request.

    ``max_tokens=None`` means "up to the model's context length". ``stop`` strings are
    matched on the decoded text by the shared engine; ``stop_token_ids`` end generation
    in the native engine. ``logprobs=k`` returns the chosen token's log-probability and
    the ``k`` most likely alternatives at each step.
    """

    n: int = 1
    max_tokens: int | None = 16
    min_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 or -1: disabled
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: list[str] | None = None
    stop_token_ids: list[int] | None = None
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    logprobs: int | None = None
    skip_special_tokens: bool = True
    output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE
    structured_outputs: StructuredOutputsParams | None = None
    # furiosa-llm's (and vLLM's) free-form options. The engine reads none of them; the
    # furiosa backend passes on the ones furiosa-llm reads (kv_transfer_params).
    extra_args: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if self.extra_args is None:  # vLLM's and furiosa-llm's default
            self.extra_args = {}
        self.verify()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1

    def verify(self) -> None:
        """Raise ``InvalidRequestError`` (a ``ValueError``) naming the first bad option."""
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise _bad("n", self.n, "an integer >= 1")
        if self.max_tokens is not None and (
            not isinstance(self.max_tokens, int)
            or isinstance(self.max_tokens, bool)
            or self.max_tokens < 1
        ):
            raise _bad("max_tokens", self.max_tokens, "an integer >= 1 or None")
        if not isinstance(self.min_tokens, int) or self.min_tokens < 0:
            raise _bad("min_tokens", self.min_tokens, "an integer >= 0")
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise _bad("min_tokens", self.min_tokens, f"<= max_tokens ({self.max_tokens})")
        if not _finite(self.temperature) or self.temperature < 0:
            raise _bad("temperature", self.temperature, "a finite number >= 0")
        if not _finite(self.top_p) or not 0.0 < self.top_p <= 1.0:
            raise _bad("top_p", self.top_p, "in (0, 1]")
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k < -1:
            raise _bad("top_k", self.top_k, "an integer >= 1, or 0 / -1 to disable")
        if not _finite(self.min_p) or not 0.0 <= self.min_p <= 1.0:
            raise _bad("min_p", self.min_p, "in [0, 1]")
        if not _finite(self.repetition_penalty) or self.repetition_penalty <= 0:
            raise _bad("repetition_penalty", self.repetition_penalty, "a finite number > 0")
        for name in ("presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            if not _finite(value) or not -2.0 <= value <= 2.0:
                raise _bad(name, value, "in [-2, 2]")
        if not isinstance(self.extra_args, dict) or not all(
            isinstance(key, str) for key in self.extra_args
        ):
            raise _bad("extra_args", self.extra_args, "a dict with string keys")
        if self.seed is not None and (
            not isinstance(self.seed, int) or isinstance(self.seed, bool)
        ):
            raise _bad("seed", self.seed, "an integer or None")
        if self.stop is not None:
            if isinstance(self.stop, str):
                self.stop = [self.stop]
            if not isinstance(self.stop, list) or not all(
                isinstance(s, str) and s for s in self.stop
            ):
                raise _bad("stop", self.stop, "a list of non-empty strings")
        if self.stop_token_ids is not None:
            check_token_ids(self.stop_token_ids, "stop_token_ids", allow_empty=True)
        if self.logprobs is not None and (
            not isinstance(self.logprobs, int)
            or isinstance(self.logprobs, bool)
            or not 0 <= self.logprobs <= 20
        ):
            raise _bad("logprobs", self.logprobs, "an integer in [0, 20] or None")
        if not isinstance(self.output_kind, RequestOutputKind):
            raise _bad("output_kind", self.output_kind, "a RequestOutputKind")
        if self.structured_outputs is not None:
            if not isinstance(self.structured_outputs, StructuredOutputsParams):
                raise _bad(
                    "structured_outputs", self.structured_outputs, "a StructuredOutputsParams"
                )
            self.structured_outputs.verify()

    def clone(self, **changes: object) -> SamplingParams:
        """A copy with some options changed (validated again)."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__}
        values.update(changes)
        return SamplingParams(**values)  # type: ignore[arg-type]


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class PoolingParams:
    """Options of one pooling (embedding) request.

    ``truncate_prompt_tokens``: keep at most this many tokens of each input (``-1``: up to
    the model's limit; ``None``: an input over the limit is an error). ``dimensions``
    truncates each vector (Matryoshka style) before normalizing.
    """

    normalize: bool = True
    dimensions: int | None = None
    truncate_prompt_tokens: int | None = -1
    task: str | None = None

    def __post_init__(self) -> None:
        self.verify()

    def verify(self) -> None:
        if self.dimensions is not None and (
            not isinstance(self.dimensions, int)
            or isinstance(self.dimensions, bool)
            or self.dimensions < 1
        ):
            raise _bad("dimensions", self.dimensions, "an integer >= 1 or None")
        if self.truncate_prompt_tokens is not None and (
            not isinstance(self.truncate_prompt_tokens, int)
            or (self.truncate_prompt_tokens < 1 and self.truncate_prompt_tokens != -1)
        ):
            raise _bad(
                "truncate_prompt_tokens", self.truncate_prompt_tokens, "an integer >= 1, -1 or None"
            )
        if self.task not in (None, "embed", "encode", "score"):
            raise _bad("task", self.task, "'embed', 'encode', 'score' or None")
