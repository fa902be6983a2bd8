"""``FuriosaLLM``: a LlamaIndex ``FunctionCallingLLM`` on the shared Furiosa engine.

One streaming path: every method starts one engine request (``_start``) and reads it
through ``_turns``; ``chat``/``complete`` keep the last response of the same stream.
The sync methods run that stream on the engine's bridge loop, the async ones on the
caller's loop. Tool calls and structured output are constrained and parsed by the
engine; this class only maps LlamaIndex objects onto requests and back.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import llama_index.core.instrumentation as instrument
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    LogProb,
    MessageRole,
    TextBlock,
    ThinkingBlock,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.constants import DEFAULT_NUM_OUTPUTS, DEFAULT_TEMPERATURE
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.llm import ToolSelection

from ..adapter_fields import ChatOptions, EngineChoice, RefusesUnknownArguments
from ..core import GenerationChunk, RequestOutputKind, ToolCall, Usage
from ..core.sync_bridge import iterate_sync, run_sync
from .messages import (
    to_engine_messages,
    tool_call_block,
    tool_calls_kwarg,
    tool_selections,
)
from .structured_program import SchemaConstrainedLLM

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

dispatcher = instrument.get_dispatcher(__name__)
ResponseT = TypeVar("ResponseT", ChatResponse, CompletionResponse)


@dataclass
class _Turn:
    """What one request has produced so far, and what the latest chunk added."""

    text: str = ""
    delta: str = ""
    reasoning: str = ""
    reasoning_delta: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[list[LogProb]] | None = None
    request_id: str = ""
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    usage: Usage | None = None


class FuriosaLLM(RefusesUnknownArguments, SchemaConstrainedLLM, ChatOptions, EngineChoice):
    """A LlamaIndex LLM served in-process by the Furiosa engine (RNGD, or torch elsewhere).

    With no arguments it runs the bundled default chat model. ``model``, ``backend``,
    ``device`` and ``dtype`` pick another model the way the LangChain adapters do, and an
    explicit ``engine`` may be passed instead; engines come from ``get_engine`` so every
    adapter asking for the same model shares one instance. The engine loads at
    construction (LlamaIndex reads ``metadata`` early).

    Every sampling field may be overridden per call (``llm.chat(messages, temperature=0)``);
    ``tools``, ``tool_choice``, ``parallel_tool_calls``, ``chat_template_kwargs``,
    ``tool_call_format``, ``reasoning`` and ``request_id`` may also be given per call. A
    thinking model's reasoning comes back as a ``ThinkingBlock`` (``thinking_delta`` while
    streaming).
    """

    max_tokens: int | None = DEFAULT_NUM_OUTPUTS
    """Most tokens to generate per response; ``None`` means up to the context length."""

    temperature: float | None = DEFAULT_TEMPERATURE
    """Sampling temperature; ``0`` is greedy (deterministic). LlamaIndex's default: 0.1."""

    additional_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Options for the engine that are not fields of this class (LlamaIndex's convention);
    they reach the engine as ``SamplingParams.extra_args``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sampling_params(None, {})  # bad field values fail here, as pydantic's would
        self._get_engine()

    @classmethod
    def class_name(cls) -> str:
        return "FuriosaLLM"

    def _extra_args(self) -> dict[str, Any]:
        return self.additional_kwargs

    @property
    def metadata(self) -> LLMMetadata:
        engine = self._get_engine()
        return LLMMetadata(
            context_window=engine.max_model_len,
            num_output=self.max_tokens if self.max_tokens is not None else DEFAULT_NUM_OUTPUTS,
            is_chat_model=True,
            is_function_calling_model=True,
            model_name=engine.model_name,
        )

    # ---- the one request path ----

    def _start(
        self,
        *,
        messages: Sequence[ChatMessage] | None = None,
        prompt: str | None = None,
        options: dict[str, Any],
        final_only: bool = False,
    ) -> AsyncGenerator[GenerationChunk, None]:
        """Validate and start one engine request (bad options raise here, at the call).
        ``final_only``: the caller reads only the whole answer (``chat``, ``complete``), so
        the engine may hand it over at the end (``RequestOutputKind.FINAL_ONLY``) instead of
        waking the caller's loop every token."""
        engine = self._get_engine()
        if messages is None:
            request = {"prompt": prompt, **self._completion_request(options)}
        else:
            messages = self._with_system_prompt(messages)
            ends_with_user = bool(messages) and messages[-1].role == MessageRole.USER
            request = self._chat_request(options, engine, ends_with_user=ends_with_user)
            request["messages"] = to_engine_messages(messages)
        if final_only:
            request["params"] = request["params"].clone(output_kind=RequestOutputKind.FINAL_ONLY)
        return engine.stream(**request)

    def _with_system_prompt(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        """Put ``system_prompt`` first unless the conversation already has a system message."""
        if self.system_prompt and not any(m.role == MessageRole.SYSTEM for m in messages):
            return [ChatMessage(role=MessageRole.SYSTEM, content=self.system_prompt), *messages]
        return list(messages)

    async def _turns(
        self, chunks: AsyncGenerator[GenerationChunk, None]
    ) -> AsyncGenerator[_Turn, None]:
        """Accumulate engine chunks; one ``_Turn`` per chunk that adds anything."""
        turn = _Turn()
        try:
            async for chunk in chunks:
                turn.request_id = chunk.request_id
                turn.delta, turn.reasoning_delta = chunk.text, chunk.reasoning_text
                turn.text += chunk.text
                turn.reasoning += chunk.reasoning_text
                turn.tool_calls = turn.tool_calls + chunk.tool_calls
                if chunk.logprobs:
                    turn.logprobs = (turn.logprobs or []) + [
                        [LogProb(token=t, logprob=lp) for _, t, lp in token.top_logprobs]
                        or [LogProb(token=token.token, logprob=token.logprob)]
                        for token in chunk.logprobs
                    ]
                if chunk.finish_reason is not None:
                    turn.finish_reason, turn.stop_reason = chunk.finish_reason, chunk.stop_reason
                if chunk.usage is not None:
                    turn.usage = chunk.usage
                yield turn
        finally:
            await chunks.aclose()  # aborts an unfinished request

    def _raw(self, turn: _Turn) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "model": self._model_label(),
            "request_id": turn.request_id,
            "finish_reason": turn.finish_reason,
            "stop_reason": turn.stop_reason,
        }
        if turn.usage is not None:
            raw["usage"] = _token_counts(turn.usage)
        return raw

    def _chat_response(self, turn: _Turn) -> ChatResponse:
        blocks: list[Any] = []
        if turn.reasoning:
            blocks.append(ThinkingBlock(content=turn.reasoning))
        blocks.append(TextBlock(text=turn.text))
        blocks.extend(tool_call_block(call) for call in turn.tool_calls)
        message_kwargs = (
            {"tool_calls": tool_calls_kwarg(turn.tool_calls)} if turn.tool_calls else {}
        )
        extra: dict[str, Any] = _token_counts(turn.usage) if turn.usage else {}
        if turn.reasoning_delta:
            extra["thinking_delta"] = turn.reasoning_delta
        return ChatResponse(
            message=ChatMessage(
                role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=message_kwargs
            ),
            delta=turn.delta,
            raw=self._raw(turn),
            logprobs=turn.logprobs,
            additional_kwargs=extra,
        )

    def _completion_response(self, turn: _Turn) -> CompletionResponse:
        return CompletionResponse(
            text=turn.text,
            delta=turn.delta,
            raw=self._raw(turn),
            logprobs=turn.logprobs,
            additional_kwargs=_token_counts(turn.usage) if turn.usage else {},
        )

    async def _chat_stream(
        self, chunks: AsyncGenerator[GenerationChunk, None]
    ) -> ChatResponseAsyncGen:
        # aclosing: closing this stream closes ``_turns`` (and so aborts the request) at
        # once, not when asyncio finalizes the dropped generator on a later loop turn.
        async with aclosing(self._turns(chunks)) as turns:
            async for turn in turns:
                yield self._chat_response(turn)

    async def _completion_stream(
        self, chunks: AsyncGenerator[GenerationChunk, None]
    ) -> CompletionResponseAsyncGen:
        async with aclosing(self._turns(chunks)) as turns:
            async for turn in turns:
                yield self._completion_response(turn)

    def _completion_chunks(
        self, prompt: str, formatted: bool, options: dict[str, Any], final_only: bool = False
    ) -> AsyncGenerator[GenerationChunk, None]:
        # An instruct model answers a bare prompt through its chat template; a prompt the
        # caller already formatted goes to the model as is. A prompt that is not text goes
        # there too, so the engine refuses it with its own typed error.
        if formatted or not isinstance(prompt, str):
            return self._start(prompt=prompt, options=options, final_only=final_only)
        messages = [ChatMessage(role=MessageRole.USER, content=prompt)]
        return self._start(messages=messages, options=options, final_only=final_only)

    # ---- LlamaIndex LLM interface ----

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request = self._start(messages=messages, options=kwargs, final_only=True)
        return _whole(self._chat_response(run_sync(_last_turn(self._turns(request)))))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        stream = self._chat_stream(self._start(messages=messages, options=kwargs))
        return cast(ChatResponseGen, iterate_sync(stream))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request = self._start(messages=messages, options=kwargs, final_only=True)
        return _whole(self._chat_response(await _last_turn(self._turns(request))))

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return self._chat_stream(self._start(messages=messages, options=kwargs))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        chunks = self._completion_chunks(prompt, formatted, kwargs, final_only=True)
        return _whole(self._completion_response(run_sync(_last_turn(self._turns(chunks)))))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        stream = self._completion_stream(self._completion_chunks(prompt, formatted, kwargs))
        return cast(CompletionResponseGen, iterate_sync(stream))

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        chunks = self._completion_chunks(prompt, formatted, kwargs, final_only=True)
        return _whole(self._completion_response(await _last_turn(self._turns(chunks))))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return self._completion_stream(self._completion_chunks(prompt, formatted, kwargs))

    # ---- tool calling ----

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Chat kwargs with the tools in OpenAI function format (``chat_history`` is copied).

        ``tool_choice`` (a tool name, "auto", "none", "required" or an OpenAI dict) wins;
        otherwise ``tool_required`` forces some call, and without it the model chooses
        (unless ``force_tool_call_on_user_turn`` asks for a call on the user's turn).
        Without ``allow_parallel_tool_calls`` the engine ends the turn after one call.
        """
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        if tool_choice is None and tool_required:
            tool_choice = "required"  # else None: auto, or forced on the user's turn
        elif tool_choice is None and self.force_tool_call_on_user_turn is False:
            tool_choice = "auto"
        return {
            "messages": messages,
            "tools": [tool.metadata.to_openai_tool() for tool in tools] or None,
            "tool_choice": tool_choice if tools else None,
            "parallel_tool_calls": allow_parallel_tool_calls,
            **kwargs,
        }

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        selections = tool_selections(response.message)
        if not selections and error_on_no_tool_call:
            raise ValueError(
                f"Expected at least one tool call, but got none; the model answered: "
                f"{response.message.content!r}"
            )
        return selections


async def _last_turn(turns: AsyncGenerator[_Turn, None]) -> _Turn:
    """What a request produced, read at its end: a call that returns the whole answer
    builds one response, not one a token."""
    last = None
    async with aclosing(turns):
        async for last in turns:  # noqa: B007
            pass
    if last is None:  # the engine always ends with a finish chunk; be explicit if not
        raise RuntimeError("The engine returned no output")
    return last


def _whole(response: ResponseT) -> ResponseT:
    """A response as a whole answer (no ``delta``)."""
    return response.model_copy(update={"delta": None})


def _token_counts(usage: Usage) -> dict[str, int]:
    """LlamaIndex responses carry the counts at the top of ``additional_kwargs``."""
    return {**usage.token_counts(), "cached_tokens": usage.cached_tokens}
