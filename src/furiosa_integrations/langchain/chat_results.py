"""Engine chunks of one chat request as LangChain's chunks, and added up into a result."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from ..core import GenerationChunk, Usage
from .generations import generation_info, logprobs_info
from .messages import to_message_chunk


class ChatChunkConverter:
    """Engine chunks of one request to ``ChatGenerationChunk``s (tool calls numbered per
    completion)."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.tool_calls: dict[int, int] = {}

    def __call__(self, chunk: GenerationChunk) -> ChatGenerationChunk:
        seen = self.tool_calls.get(chunk.index, 0)
        self.tool_calls[chunk.index] = seen + len(chunk.tool_calls)
        info = generation_info(chunk, self.model_name)
        logprobs = logprobs_info(chunk)
        if logprobs is not None:
            info = {**(info or {}), "logprobs": logprobs}
        return ChatGenerationChunk(message=to_message_chunk(chunk, seen), generation_info=info)


class ChatAggregate:
    """The chunks of each completion added up into a ``ChatResult``."""

    def __init__(self, model_label: str) -> None:
        self.model_label = model_label
        self.chunks: dict[int, ChatGenerationChunk] = {}
        self.usage: Usage | None = None

    def add(self, index: int, chunk: ChatGenerationChunk, usage: Usage | None) -> None:
        self.chunks[index] = self.chunks[index] + chunk if index in self.chunks else chunk
        if usage is not None:
            self.usage = usage

    def chat_result(self) -> ChatResult:
        generations = [
            ChatGeneration(
                message=message_chunk_to_message(chunk.message),
                generation_info=chunk.generation_info,
            )
            for _, chunk in sorted(self.chunks.items())
        ]
        llm_output: dict[str, Any] = {"model_name": self.model_label}
        if generations and generations[0].generation_info:
            llm_output["model_name"] = generations[0].generation_info.get(
                "model_name", self.model_label
            )
        if self.usage is not None:
            llm_output["token_usage"] = self.usage.token_counts()
        return ChatResult(generations=generations, llm_output=llm_output)


__all__ = ["ChatAggregate", "ChatChunkConverter"]
