"""Turn a native engine's token steps into text chunks (vLLM's output processor role).

One ``CompletionProcessor`` per completion: incremental detokenization, stop strings,
logprobs with token text, and the text parsers (tool calls, reasoning) a request asks for.
"""

from __future__ import annotations

from typing import Any, Protocol

from .detokenizer import IncrementalDetokenizer
from .outputs import GenerationChunk, TokenLogprob, ToolCall
from .protocol import NativeStep
from .sampling_params import SamplingParams
from .tokenizer import Tokenizer


class TextParser(Protocol):
    """Splits generated text into answer text, reasoning text and tool calls, incrementally."""

    def feed(self, text: str) -> tuple[str, str, list[ToolCall]]:
        """Consume new text; return (content, reasoning, completed tool calls) ready to emit."""
        ...

    def finish(self) -> tuple[str, str, list[ToolCall]]:
        """Flush whatever is held back at the end of generation."""
        ...

    @property
    def done(self) -> bool:
        """True once the text says the turn is over (a tool call repeated word for word)."""
        ...


class CompletionProcessor:
    def __init__(
        self,
        tokenizer: Tokenizer,
        request_id: str,
        index: int,
        prompt_token_ids: list[int],
        params: SamplingParams,
        parser: TextParser | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.request_id = request_id
        self.index = index
        self.params = params
        self.parser = parser
        self.detokenizer = IncrementalDetokenizer(
            tokenizer,
            prompt_token_ids,
            skip_special_tokens=params.skip_special_tokens,
            stop=params.stop,
            include_stop_str_in_output=params.include_stop_str_in_output,
        )
        self.num_output_tokens = 0
        self.num_cached_tokens = 0
        self.finished = False
        self.emitted_tool_calls = 0

    @property
    def stopped_by_string(self) -> bool:
        return self.detokenizer.stop_reason is not None

    def process(self, step: NativeStep) -> GenerationChunk:
        """Fold one native step in; the chunk may be empty while text is held back."""
        self.num_cached_tokens = max(self.num_cached_tokens, step.num_cached_tokens)
        tokens = [t for t in step.new_token_ids]
        self.num_output_tokens += len(tokens)
        text_tokens = tokens
        if step.stop_token_id is not None and tokens and tokens[-1] == step.stop_token_id:
            text_tokens = tokens[:-1]  # a stop token ends the text, it is not part of it
        self.detokenizer.add(text_tokens)
        finish_reason: Any = step.finish_reason
        stop_reason: str | int | None = step.stop_token_id
        if self.detokenizer.stop_reason is not None:
            finish_reason, stop_reason = "stop", self.detokenizer.stop_reason
        final = finish_reason is not None
        text = self.detokenizer.take(final=final)
        chunk = GenerationChunk(
            request_id=self.request_id,
            index=self.index,
            text=text,
            token_ids=tokens,
            logprobs=self._logprobs(tokens, step) if self.params.logprobs is not None else None,
        )
        if self.parser is not None:
            content, reasoning, calls = self.parser.feed(text)
            if not final and self.parser.done:  # the turn is over: end it here
                final, finish_reason, stop_reason = True, "stop", None
            if final:
                more_content, more_reasoning, more_calls = self.parser.finish()
                content, reasoning, calls = (
                    content + more_content,
                    reasoning + more_reasoning,
                    calls + more_calls,
                )
            chunk.text, chunk.reasoning_text, chunk.tool_calls = content, reasoning, calls
            self.emitted_tool_calls += len(calls)
        if final:
            self.finished = True
            if self.emitted_tool_calls and finish_reason == "stop":
                finish_reason = "tool_calls"
            chunk.finish_reason = finish_reason
            chunk.stop_reason = stop_reason
        return chunk

    def _logprobs(self, tokens: list[int], step: NativeStep) -> list[TokenLogprob]:
        out = []
        for token, lp in zip(tokens, step.logprobs or [], strict=False):
            out.append(
                TokenLogprob(
                    token_id=token,
                    token=self.tokenizer.decode([token]),
                    logprob=lp.logprob,
                    top_logprobs=[(t, self.tokenizer.decode([t]), v) for t, v in lp.top],
                )
            )
        return out
