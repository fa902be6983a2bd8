"""Engine chunks of one chat request as LangChain's chunks, and added up into a result."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from ..core import CompletionSums, GenerationChunk
from .generations import generation_info, logprobs_info
from .messages import to_message_chunk


def chat_chunk(
    chunk: GenerationChunk, model_name: str, tool_call_index: int
) -> ChatGenerationChunk:
    """One engine chunk as a ``ChatGenerationChunk``, its tool calls numbered from
    ``tool_call_index``."""
    info = generation_info(chunk, model_name)
    logprobs = logprobs_info(chunk)
    if logprobs is not None:
        info = {**(info or {}), "logprobs": logprobs}
    return ChatGenerationChunk(
        message=to_message_chunk(chunk, tool_call_index), generation_info=info
    )


class ChatChunkConverter:
    """Engine chunks of one request to ``ChatGenerationChunk``s (tool calls numbered per
    completion)."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.tool_calls: dict[int, int] = {}

    def __call__(self, chunk: GenerationChunk) -> ChatGenerationChunk:
        seen = self.tool_calls.get(chunk.index, 0)
        self.tool_calls[chunk.index] = seen + len(chunk.tool_calls)
        return chat_chunk(chunk, self.model_name, seen)


class ChatAggregate(CompletionSums):
    """A request's engine chunks added up per completion, each converted once at the end:
    the ``ChatResult`` that adding up the converted chunks gives, without LangChain's
    message objects and their addition for every token (~25 us each, on the caller's
    event-loop thread). The usage goes on the message of the completion that carried it."""

    def __init__(self, model_label: str) -> None:
        super().__init__()
        self.model_label = model_label

    def chat_result(self, model_name: str) -> ChatResult:
        """The result; ``model_name``: the engine's, as each chunk's ``generation_info``
        names it."""
        generations = []
        for index, done in sorted(self.completions.items()):
            usage = self.usage if index == self.usage_index else None
            chunk = chat_chunk(done.as_chunk(usage=usage), model_name, 0)
            generations.append(
                ChatGeneration(
                    message=message_chunk_to_message(chunk.message),
                    generation_info=chunk.generation_info,
                )
            )
        llm_output: dict[str, Any] = {"model_name": self.model_label}
        if generations and generations[0].generation_info:
            llm_output["model_name"] = generations[0].generation_info.get(
                "model_name", self.model_label
            )
        if self.usage is not None:
            llm_output["token_usage"] = self.usage.token_counts()
        return ChatResult(generations=generations, llm_output=llm_output)


__all__ = ["ChatAggregate", "ChatChunkConverter"]
