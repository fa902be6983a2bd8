"""Structured prediction on the engine's JSON-schema constraint.

The prompt asks for the object (with its schema, so the model knows what the fields
mean), and ``structured_outputs=StructuredOutputsParams(json=schema)`` makes the engine
generate only text that matches the schema. So the final object always validates: when
``max_tokens`` runs short the engine completes the object in time (and a warning says it
was cut), and a budget too small for any complete object is refused before queuing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing
from typing import Any

import llama_index.core.instrumentation as instrument
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole, TextBlock
from llama_index.core.instrumentation.events.llm import (
    LLMStructuredPredictEndEvent,
    LLMStructuredPredictStartEvent,
)
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.program.utils import (
    FlexibleModel,
    get_program_for_llm,
    process_streaming_objects,
)
from llama_index.core.prompts import BasePromptTemplate
from llama_index.core.types import BasePydanticProgram, Model, PydanticProgramMode

from ..core import StructuredOutputsParams

dispatcher = instrument.get_dispatcher(__name__)
logger = logging.getLogger(__name__)

_INSTRUCTION = "Answer with one JSON object that follows this JSON schema:\n{schema}"


class JsonSchemaProgram(BasePydanticProgram[Model]):
    """A LlamaIndex program whose output is constrained to ``output_cls``'s JSON schema."""

    def __init__(
        self, llm: SchemaConstrainedLLM, output_cls: type[Model], prompt: BasePromptTemplate
    ):
        self._llm = llm
        self._output_cls = output_cls
        self._prompt = prompt
        self._schema = output_cls.model_json_schema()

    @property
    def output_cls(self) -> type[Model]:
        return self._output_cls

    def _messages(self, prompt_args: dict[str, Any]) -> list[ChatMessage]:
        messages = self._llm._get_messages(self._prompt, **prompt_args)
        instruction = _INSTRUCTION.format(schema=json.dumps(self._schema))
        last = messages[-1] if messages else None
        if last is not None and last.role == MessageRole.USER:
            # Append to the user's turn (a copy) so the request stays a single user turn.
            text = (last.content or "") + "\n\n" + instruction
            return [*messages[:-1], last.model_copy(update={"blocks": [TextBlock(text=text)]})]
        return [*messages, ChatMessage(role=MessageRole.USER, content=instruction)]

    def _options(self, llm_kwargs: dict[str, Any] | None) -> dict[str, Any]:
        options = {k: v for k, v in (llm_kwargs or {}).items() if k not in ("tools", "tool_choice")}
        options["structured_outputs"] = StructuredOutputsParams(json=self._schema)
        return options

    def _parse(self, response: ChatResponse) -> Model:
        raw = response.raw or {}
        if raw.get("finish_reason") == "length":
            logger.warning(
                "The %s object was completed early to fit max_tokens: its values may be "
                "cut short; raise max_tokens (per call: llm_kwargs={'max_tokens': ...})",
                self._output_cls.__name__,
            )
        return self._output_cls.model_validate_json(response.message.content or "")

    def __call__(
        self, *args: Any, llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any
    ) -> Model:
        response = self._llm.chat(self._messages(prompt_args), **self._options(llm_kwargs))
        return self._parse(response)

    async def acall(
        self, *args: Any, llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any
    ) -> Model:
        response = await self._llm.achat(self._messages(prompt_args), **self._options(llm_kwargs))
        return self._parse(response)

    def stream_call(
        self, *args: Any, llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any
    ) -> Generator[Model | FlexibleModel, None, None]:
        """Partial objects as the JSON grows, then the validated object."""
        stream = self._llm.stream_chat(self._messages(prompt_args), **self._options(llm_kwargs))
        partial: Any = None
        last = None
        for last in stream:
            partial = process_streaming_objects(
                last, self._output_cls, cur_objects=_as_list(partial), llm=self._llm
            )
            yield partial
        if last is not None:
            yield self._parse(last)

    async def astream_call(  # type: ignore[override]
        self, *args: Any, llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any
    ) -> AsyncGenerator[Model | FlexibleModel, None]:
        stream = await self._llm.astream_chat(
            self._messages(prompt_args), **self._options(llm_kwargs)
        )

        async def objects() -> AsyncGenerator[Model | FlexibleModel, None]:
            partial: Any = None
            last = None
            async with aclosing(stream):
                async for last in stream:
                    partial = process_streaming_objects(
                        last, self._output_cls, cur_objects=_as_list(partial), llm=self._llm
                    )
                    yield partial
            if last is not None:
                yield self._parse(last)

        return objects()


def _as_list(partial: Any) -> list[Any] | None:
    return None if partial is None else [partial]


class SchemaConstrainedLLM(FunctionCallingLLM):
    """A ``FunctionCallingLLM`` whose structured prediction is constrained to the output
    class's JSON schema (``JsonSchemaProgram``) unless ``pydantic_program_mode`` asks for
    LlamaIndex's own programs."""

    # ---- structured output, on the engine's JSON-schema constraint ----

    def _program(
        self, output_cls: type[Model], prompt: BasePromptTemplate
    ) -> BasePydanticProgram[Model]:
        if self.pydantic_program_mode != PydanticProgramMode.DEFAULT:
            return get_program_for_llm(
                output_cls, prompt, self, pydantic_program_mode=self.pydantic_program_mode
            )
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
