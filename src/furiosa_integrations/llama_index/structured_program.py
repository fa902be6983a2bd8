"""Structured prediction on the engine's JSON-schema constraint.

The prompt asks for the object (with its schema, so the model knows what the fields
mean), and ``structured_outputs=StructuredOutputsParams(json=schema)`` makes the engine
generate only text that matches the schema. So the final object always validates; the
only way to fail is running out of ``max_tokens``, which raises a clear error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole, TextBlock
from llama_index.core.program.utils import FlexibleModel, process_streaming_objects
from llama_index.core.prompts import BasePromptTemplate
from llama_index.core.types import BasePydanticProgram, Model

from ..engine.structured import StructuredOutputsParams

if TYPE_CHECKING:
    from .llm import FuriosaLLM

_INSTRUCTION = "Answer with one JSON object that follows this JSON schema:\n{schema}"


class JsonSchemaProgram(BasePydanticProgram[Model]):
    """A LlamaIndex program whose output is constrained to ``output_cls``'s JSON schema."""

    def __init__(self, llm: FuriosaLLM, output_cls: type[Model], prompt: BasePromptTemplate):
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
            raise ValueError(
                f"The {self._output_cls.__name__} object was cut off at max_tokens="
                f"{self._llm.max_tokens} before it was complete; raise max_tokens "
                "(per call: llm_kwargs={'max_tokens': ...})"
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
