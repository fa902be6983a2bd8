"""``FuriosaLLM``: a LlamaIndex ``FunctionCallingLLM`` on the shared Furiosa engine.

One streaming path: every method starts one engine request (``_start``) and reads it
through ``_turns``; ``chat``/``complete`` keep the last response of the same stream.
The sync methods run that stream on the engine's bridge loop, the async ones on the
caller's loop. Tool calls and structured output are constrained and parsed by the
engine; this class only maps LlamaIndex objects onto requests and back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

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
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.constants import DEFAULT_NUM_OUTPUTS, DEFAULT_TEMPERATURE
from llama_index.core.instrumentation.events.llm import (
    LLMStructuredPredictEndEvent,
    LLMStructuredPredictStartEvent,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.prompts import BasePromptTemplate
from llama_index.core.types import BasePydanticProgram, Model, PydanticProgramMode

from ..engine import AsyncEngine, GenerationChunk, SamplingParams, ToolCall, Usage, get_engine
from ..engine.structured import StructuredOutputsParams
from ..engine.sync_bridge import iterate_sync, run_sync
from .messages import (
    to_engine_messages,
    tool_call_block,
    tool_calls_kwarg,
    tool_selections,
)

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

dispatcher = instrument.get_dispatcher(__name__)

# Fields that become SamplingParams options; each may also be given per call.
_SAMPLING_FIELDS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "stop",
    "logprobs",
    "structured_outputs",
)
# Per-call options that are not sampling options.
_REQUEST_OPTIONS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "chat_template_kwargs",
    "request_id",  # a caller-chosen id (unique among requests in flight), e.g. to abort it
)


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


class FuriosaLLM(FunctionCallingLLM):
    """A LlamaIndex LLM served in-process by the Furiosa engine (RNGD, or torch elsewhere).

    With no arguments it runs the bundled default chat model. ``model``, ``backend`` and
    ``device`` pick another model the way the LangChain adapters do, and an explicit
    ``engine`` may be passed instead; engines come from ``get_engine`` so every adapter
    asking for the same model shares one instance.

    Every sampling field may be overridden per call (``llm.chat(messages, temperature=0)``);
    ``tools``, ``tool_choice``, ``chat_template_kwargs`` and ``request_id`` may also be given
    per call.
    """

    model: str | None = Field(
        default=None,
        description="Local model directory or .gguf file; None for the bundled default chat model.",
    )
    backend: str = Field(
        default="auto",
        description="'auto' (furiosa on an RNGD NPU, else torch), 'furiosa' or 'torch'.",
    )
    device: str | None = Field(
        default=None, description="Device for the torch backend ('cpu', 'cuda', ...); None picks."
    )
    dtype: str | None = Field(
        default=None,
        description="Torch backend precision: 'float32' or 'bfloat16'; None picks "
        "(fp32 on CPU, bf16 on CUDA).",
    )
    max_tokens: int = Field(
        default=DEFAULT_NUM_OUTPUTS, gt=0, description="Most tokens to generate per response."
    )
    temperature: float = Field(
        default=DEFAULT_TEMPERATURE, ge=0.0, description="Sampling temperature; 0 is greedy."
    )
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    top_k: int = Field(default=0, ge=-1, description="Sample among the k likeliest; 0/-1: all.")
    min_p: float = Field(default=0.0, ge=0.0, le=1.0, description="Minimum relative probability.")
    repetition_penalty: float = Field(default=1.0, gt=0.0, description="> 1 discourages repeats.")
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0, description="OpenAI-style.")
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0, description="OpenAI-style.")
    seed: int | None = Field(default=None, description="Seed for reproducible sampling.")
    stop: list[str] | None = Field(
        default=None, description="Stop strings; the text ends before the first one found."
    )
    logprobs: int | None = Field(
        default=None,
        ge=0,
        le=20,
        description="Return each token's log-probability and this many alternatives.",
    )
    structured_outputs: StructuredOutputsParams | None = Field(
        default=None,
        description=(
            "A constraint on every response (JSON schema, regex, choice, grammar, ...); "
            "e.g. a grammar that keeps a small model in the ReAct format."
        ),
    )
    chat_template_kwargs: dict[str, Any] | None = Field(
        default=None, description="Extra variables for the model's chat template."
    )

    _engine: AsyncEngine = PrivateAttr()

    def __init__(self, *, engine: AsyncEngine | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if engine is None:
            engine = get_engine(
                self.model,
                task="generate",
                backend=self.backend,
                device=self.device,
                dtype=self.dtype,
            )
        if engine.task != "generate":
            raise ValueError(
                f"{engine.model_name} is not a generation model (task={engine.task!r})"
            )
        self._engine = engine

    @classmethod
    def class_name(cls) -> str:
        return "FuriosaLLM"

    @property
    def engine(self) -> AsyncEngine:
        """The shared engine serving this LLM."""
        return self._engine

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self._engine.max_model_len,
            num_output=self.max_tokens,
            is_chat_model=True,
            is_function_calling_model=True,
            model_name=self._engine.model_name,
        )

    # ---- the one request path ----

    def _start(
        self,
        *,
        messages: Sequence[ChatMessage] | None = None,
        prompt: str | None = None,
        options: dict[str, Any],
    ) -> AsyncIterator[GenerationChunk]:
        """Validate and start one engine request (bad options raise here, at the call)."""
        sampling = {name: getattr(self, name) for name in _SAMPLING_FIELDS}
        request: dict[str, Any] = {"chat_template_kwargs": self.chat_template_kwargs}
        for key, value in options.items():
            if key in _SAMPLING_FIELDS:
                sampling[key] = value
            elif key in _REQUEST_OPTIONS:
                request[key] = value
            else:
                raise ValueError(
                    f"FuriosaLLM got an unknown option {key!r}; per-call options are "
                    f"{', '.join(_SAMPLING_FIELDS + _REQUEST_OPTIONS)}"
                )
        params = SamplingParams(**sampling)
        parallel = request.get("parallel_tool_calls")
        if messages is None:
            return self._engine.stream(prompt, params=params, request_id=request.get("request_id"))
        return self._engine.stream(
            messages=to_engine_messages(self._with_system_prompt(messages)),
            params=params,
            tools=request.get("tools") or None,
            tool_choice=request.get("tool_choice"),
            # None (unset) is the engine's default: several calls per turn allowed.
            parallel_tool_calls=True if parallel is None else parallel,
            chat_template_kwargs=request["chat_template_kwargs"],
            request_id=request.get("request_id"),
        )

    def _with_system_prompt(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        """Put ``system_prompt`` first unless the conversation already has a system message."""
        if self.system_prompt and not any(m.role == MessageRole.SYSTEM for m in messages):
            return [ChatMessage(role=MessageRole.SYSTEM, content=self.system_prompt), *messages]
        return list(messages)

    async def _turns(self, chunks: AsyncIterator[GenerationChunk]) -> AsyncIterator[_Turn]:
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
            await chunks.aclose()  # type: ignore[attr-defined]  # aborts an unfinished request

    def _raw(self, turn: _Turn) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "model": self._engine.model_name,
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

    async def _chat_stream(self, chunks: AsyncIterator[GenerationChunk]) -> ChatResponseAsyncGen:
        async for turn in self._turns(chunks):
            yield self._chat_response(turn)

    async def _completion_stream(
        self, chunks: AsyncIterator[GenerationChunk]
    ) -> CompletionResponseAsyncGen:
        async for turn in self._turns(chunks):
            yield self._completion_response(turn)

    def _completion_request(
        self, prompt: str, formatted: bool, options: dict[str, Any]
    ) -> AsyncIterator[GenerationChunk]:
        # An instruct model answers a bare prompt through its chat template; a prompt the
        # caller already formatted goes to the model as is. A prompt that is not text goes
        # there too, so the engine refuses it with its own typed error.
        if formatted or not isinstance(prompt, str):
            return self._start(prompt=prompt, options=options)
        return self._start(
            messages=[ChatMessage(role=MessageRole.USER, content=prompt)], options=options
        )

    # ---- LlamaIndex LLM interface ----

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return run_sync(_final(self._chat_stream(self._start(messages=messages, options=kwargs))))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        stream = self._chat_stream(self._start(messages=messages, options=kwargs))
        return cast(ChatResponseGen, iterate_sync(stream))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await _final(self._chat_stream(self._start(messages=messages, options=kwargs)))

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return self._chat_stream(self._start(messages=messages, options=kwargs))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return run_sync(
            _final(self._completion_stream(self._completion_request(prompt, formatted, kwargs)))
        )

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        stream = self._completion_stream(self._completion_request(prompt, formatted, kwargs))
        return cast(CompletionResponseGen, iterate_sync(stream))

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return await _final(
            self._completion_stream(self._completion_request(prompt, formatted, kwargs))
        )

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return self._completion_stream(self._completion_request(prompt, formatted, kwargs))

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
        otherwise ``tool_required`` forces some call and its absence lets the model choose.
        Without ``allow_parallel_tool_calls`` the engine ends the turn after one call.
        """
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        if tool_choice is None:
            tool_choice = "required" if tool_required else "auto"
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

    # ---- structured output, on the engine's JSON-schema constraint ----

    def _program(
        self, output_cls: type[Model], prompt: BasePromptTemplate
    ) -> BasePydanticProgram[Model]:
        if self.pydantic_program_mode != PydanticProgramMode.DEFAULT:
            from llama_index.core.program.utils import get_program_for_llm

            return get_program_for_llm(
                output_cls, prompt, self, pydantic_program_mode=self.pydantic_program_mode
            )
        from .structured_program import JsonSchemaProgram

        return JsonSchemaProgram(llm=self, output_cls=output_cls, prompt=prompt)

    @dispatcher.span
    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """A validated ``output_cls``: generation is constrained to its JSON schema."""
        dispatcher.event(
            LLMStructuredPredictStartEvent(
                output_cls=output_cls, template=prompt, template_args=prompt_args
            )
        )
        result = self._program(output_cls, prompt)(llm_kwargs=llm_kwargs, **prompt_args)
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result  # type: ignore[return-value]

    @dispatcher.span
    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Async ``structured_predict``."""
        dispatcher.event(
            LLMStructuredPredictStartEvent(
                output_cls=output_cls, template=prompt, template_args=prompt_args
            )
        )
        result = await self._program(output_cls, prompt).acall(llm_kwargs=llm_kwargs, **prompt_args)
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result  # type: ignore[return-value]

    # The base class's stream_structured_predict / astream_structured_predict (events
    # included) get their program's stream from these two hooks.
    def _structured_stream_call(  # type: ignore[override]
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Any:
        return self._program(output_cls, prompt).stream_call(llm_kwargs=llm_kwargs, **prompt_args)

    async def _structured_astream_call(  # type: ignore[override]
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Any:
        return await self._program(output_cls, prompt).astream_call(
            llm_kwargs=llm_kwargs, **prompt_args
        )


async def _final(stream: AsyncIterator[Any]) -> Any:
    """The last response of a stream, as a whole response (no ``delta``)."""
    last = None
    async for last in stream:  # noqa: B007
        pass
    if last is None:  # the engine always ends with a finish chunk; be explicit if not
        raise RuntimeError("The engine returned no output")
    return last.model_copy(update={"delta": None})


def _token_counts(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": usage.cached_tokens,
    }
