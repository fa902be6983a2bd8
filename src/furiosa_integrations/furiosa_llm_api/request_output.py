"""vLLM-style request outputs, as furiosa-llm's ``AsyncLLMEngine`` / ``LLMEngine`` return them.

Field names follow vLLM and furiosa-llm (``furiosa_llm.outputs``), so code written
against either reads these unchanged. ``RequestOutputAssembler`` folds the shared
engine's ``GenerationChunk`` stream into them, honouring ``SamplingParams.output_kind``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..core import GenerationChunk, RequestOutputKind, TokenLogprob


@dataclass
class Logprob:
    """Log-probability of one token; ``rank`` is its place among the most likely (1 = top)."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


# One dict per generated token: the sampled token and the top alternatives.
SampleLogprobs = list[dict[int, Logprob]]


@dataclass
class CompletionOutput:
    """One completion of a request (``index`` among ``n``).

    ``finish_reason``: ``"stop"``, ``"length"``, ``"abort"`` or ``"tool_calls"``; ``None``
    while running. ``stop_reason``: the stop string or stop token id that ended it.
    """

    index: int
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: SampleLogprobs | None = None
    finish_reason: str | None = None
    stop_reason: str | int | None = None

    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class RequestOutput:
    """What one generation request has produced so far (or, with FINAL_ONLY, in all)."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool
    num_output_tokens: int = 0
    num_cached_tokens: int = 0
    prompt_logprobs: None = None  # not computed; kept for vLLM compatibility

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)


@dataclass
class PoolingOutput:
    """One pooled vector; ``data`` is a 1-D ``torch.Tensor`` (as in vLLM and furiosa-llm)."""

    data: Any


@dataclass
class PoolingRequestOutput:
    """The result of one pooling (embedding) request."""

    request_id: str
    outputs: PoolingOutput
    prompt_token_ids: list[int]
    finished: bool = True


def _logprob_dicts(logprobs: list[TokenLogprob]) -> SampleLogprobs:
    out: SampleLogprobs = []
    for lp in logprobs:
        entry = {
            token_id: Logprob(value, rank, text)
            for rank, (token_id, text, value) in enumerate(lp.top_logprobs, start=1)
        }
        if lp.token_id not in entry:
            entry[lp.token_id] = Logprob(lp.logprob, None, lp.token)
        out.append(entry)
    return out


class RequestOutputAssembler:
    """Fold one request's chunks into ``RequestOutput`` objects.

    CUMULATIVE: every output carries all text so far, for all ``n`` completions.
    DELTA: every output carries only what is new, for the completion that changed.
    FINAL_ONLY: one output, when every completion has finished.
    """

    def __init__(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: list[int],
        n: int,
        output_kind: RequestOutputKind,
    ) -> None:
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = prompt_token_ids
        self.kind = output_kind
        self.completions = [CompletionOutput(index=i) for i in range(n)]
        self.num_output_tokens = 0
        self.num_cached_tokens = 0

    @property
    def finished(self) -> bool:
        return all(c.finished() for c in self.completions)

    def add(self, chunk: GenerationChunk) -> RequestOutput | None:
        """Fold ``chunk`` in; return the output to emit now, if any."""
        completion = self.completions[chunk.index]
        completion.text += chunk.text
        completion.token_ids.extend(chunk.token_ids)
        delta_logprobs = _logprob_dicts(chunk.logprobs) if chunk.logprobs is not None else None
        if delta_logprobs is not None:
            completion.logprobs = (completion.logprobs or []) + delta_logprobs
        if chunk.finish_reason is not None:
            completion.finish_reason = chunk.finish_reason
            completion.stop_reason = chunk.stop_reason
        self.num_output_tokens += len(chunk.token_ids)
        if chunk.usage is not None:
            self.num_cached_tokens = chunk.usage.cached_tokens
        if self.kind is RequestOutputKind.FINAL_ONLY:
            return self._output(self._snapshot(), self.num_output_tokens) if self.finished else None
        if self.kind is RequestOutputKind.DELTA:
            delta = CompletionOutput(
                index=chunk.index,
                text=chunk.text,
                token_ids=list(chunk.token_ids),
                logprobs=delta_logprobs,
                finish_reason=chunk.finish_reason,
                stop_reason=chunk.stop_reason,
            )
            return self._output([delta], len(chunk.token_ids))
        return self._output(self._snapshot(), self.num_output_tokens)

    def _snapshot(self) -> list[CompletionOutput]:
        # Copies, so an output a caller holds does not change under it.
        return [
            replace(
                c,
                token_ids=list(c.token_ids),
                logprobs=list(c.logprobs) if c.logprobs is not None else None,
            )
            for c in self.completions
        ]

    def _output(self, outputs: list[CompletionOutput], num_output_tokens: int) -> RequestOutput:
        return RequestOutput(
            request_id=self.request_id,
            prompt=self.prompt,
            prompt_token_ids=self.prompt_token_ids,
            outputs=outputs,
            finished=self.finished,
            num_output_tokens=num_output_tokens,
            num_cached_tokens=self.num_cached_tokens,
        )
