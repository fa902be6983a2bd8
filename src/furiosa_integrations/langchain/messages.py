"""LangChain messages to the engine's OpenAI-style message dicts, and engine chunks back.

Content checks (text only on a text-only model, known part types) happen in the engine's
``chat.normalize_messages``; this module only changes the shape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import InputTokenDetails, UsageMetadata
from langchain_core.messages.tool import tool_call_chunk

from ..core import GenerationChunk, Usage

# LangChain 1.x reads the provider from every message (content_blocks picks its translator;
# none is registered for us, so the standard best-effort one reads text, tool calls and
# additional_kwargs["reasoning_content"]).
MODEL_PROVIDER = "furiosa"

_ROLES = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
}

# Blocks an AI message may carry besides its text: the tool calls travel in
# ``tool_calls``, and earlier reasoning in ``reasoning_content`` (for the templates that
# render it).
_AI_ONLY_BLOCKS = frozenset(
    {
        "tool_use",
        "tool_call",
        "tool_call_chunk",
        "thinking",
        "redacted_thinking",
        "reasoning",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_result",
        "invalid_tool_call",
    }
)


def to_engine_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Convert a LangChain conversation into the engine's message dicts."""
    return [_to_engine_message(message) for message in messages]


def _to_engine_message(message: BaseMessage) -> dict[str, Any]:
    if isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    elif isinstance(message, ToolMessage):
        role = "tool"
    elif isinstance(message, ChatMessage) and message.role in _ROLES:
        role = _ROLES[message.role]
    else:
        raise ValueError(
            f"Unsupported message type {type(message).__name__}; use system, human, ai or "
            "tool messages"
        )
    out: dict[str, Any] = {"role": role, "content": _content(message.content, role)}
    if message.name:
        out["name"] = message.name
    if isinstance(message, AIMessage) and (reasoning := reasoning_of(message)):
        out["reasoning_content"] = reasoning
    if isinstance(message, AIMessage) and message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["args"]},
            }
            for call in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
        if message.status == "error":
            out["content"] = _mark_error(out["content"])
    return out


def reasoning_of(message: AIMessage) -> str:
    """An AI message's reasoning: standard ``reasoning`` blocks (Anthropic-style
    ``thinking`` blocks too), else ``additional_kwargs["reasoning_content"]``."""
    if isinstance(message.content, list):
        texts = [
            str(block.get("reasoning") or block.get("thinking") or "")
            for block in message.content
            if isinstance(block, dict) and block.get("type") in ("reasoning", "thinking")
        ]
        if any(texts):
            return "".join(texts)
    reasoning = message.additional_kwargs.get("reasoning_content")
    return reasoning if isinstance(reasoning, str) else ""


def _content(content: str | list[Any], role: str) -> str | list[Any]:
    """Text stays text; list content becomes OpenAI-style parts the engine checks."""
    if isinstance(content, str):
        return content
    parts: list[Any] = []
    for block in content:
        if isinstance(block, str):
            parts.append({"type": "text", "text": block})
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif (
            role == "assistant" and isinstance(block, dict) and block.get("type") in _AI_ONLY_BLOCKS
        ):
            continue
        else:
            # Images, files, audio...: the engine refuses what the model cannot read.
            parts.append(block)
    return parts


def _mark_error(content: str | list[Any]) -> str | list[Any]:
    """A failed tool's result says so, for templates that have no status field."""
    text = content if isinstance(content, str) else ""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        text = str(content[0].get("text", ""))
    if text.lstrip().lower().startswith("error"):
        return content
    if isinstance(content, str):
        return f"Error: {content}"
    return [{"type": "text", "text": "Error: "}, *content]


def usage_metadata(usage: Usage) -> UsageMetadata:
    """The engine's token counts in LangChain's shape."""
    return UsageMetadata(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        input_token_details=InputTokenDetails(cache_read=usage.cached_tokens),
    )


def to_message_chunk(chunk: GenerationChunk, tool_call_index: int) -> AIMessageChunk:
    """One engine chunk as an ``AIMessageChunk``; tool calls are numbered from
    ``tool_call_index`` so parallel calls stay apart when chunks are added up.

    Reasoning goes in ``additional_kwargs["reasoning_content"]`` (where LangChain's
    ``content_blocks`` reads a ``reasoning`` block from, and ``output_version="v1"`` puts
    one in the content), as langchain-ollama and the OpenAI-compatible integrations do."""
    # Only the fields this chunk sets: LangChain validates each one given, once a token.
    fields: dict[str, Any] = {"response_metadata": {"model_provider": MODEL_PROVIDER}}
    if chunk.reasoning_text:
        fields["additional_kwargs"] = {"reasoning_content": chunk.reasoning_text}
    if chunk.tool_calls:
        fields["tool_call_chunks"] = [
            tool_call_chunk(
                name=call.name,
                args=json.dumps(call.arguments, ensure_ascii=False),
                id=call.id,
                index=tool_call_index + i,
            )
            for i, call in enumerate(chunk.tool_calls)
        ]
    if chunk.usage is not None:
        fields["usage_metadata"] = usage_metadata(chunk.usage)
        fields["chunk_position"] = "last"
    return AIMessageChunk(content=chunk.text, **fields)
