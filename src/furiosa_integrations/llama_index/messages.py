"""LlamaIndex chat messages <-> the engine's OpenAI-style message dicts, and tool calls.

Tool calls live on the assistant ``ChatMessage`` twice, as LlamaIndex reads them in two
places: ``ToolCallBlock`` blocks (what ``get_tool_calls_from_response`` and the agents'
memory use) and ``additional_kwargs["tool_calls"]`` in the OpenAI shape (what
``program.utils`` and ``chat_engine.types.is_function`` test for).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection

from ..core import ToolCall

# LlamaIndex roles the engine has no name for.
_ROLE_ALIASES = {
    MessageRole.FUNCTION: "tool",
    MessageRole.CHATBOT: "assistant",
    MessageRole.MODEL: "assistant",
}


def to_engine_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """The engine's message dicts for a LlamaIndex chat history (the history is not changed)."""
    return [to_engine_message(message) for message in messages]


def to_engine_message(message: ChatMessage) -> dict[str, Any]:
    role = _ROLE_ALIASES.get(message.role, message.role.value)
    out: dict[str, Any] = {"role": role, "content": _content(message)}
    extra = message.additional_kwargs
    if role == "assistant":
        calls = _tool_calls_of(message)
        if calls:
            out["tool_calls"] = calls
        # Earlier reasoning, for the templates that render it (``reasoning_content``).
        thoughts = [b.content for b in message.blocks if isinstance(b, ThinkingBlock) and b.content]
        if thoughts:
            out["reasoning_content"] = "".join(thoughts)
    if role == "tool" and extra.get("tool_call_id"):
        out["tool_call_id"] = extra["tool_call_id"]
    if extra.get("name"):
        out["name"] = extra["name"]
    return out


def _content(message: ChatMessage) -> str | list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            # The engine loads it (or refuses it on a text-only model with a typed error).
            parts.append(_image_part(block))
        elif isinstance(block, (ToolCallBlock, ThinkingBlock, CachePoint)):
            continue  # calls go in "tool_calls", thoughts in "reasoning_content"; hints nowhere
        else:
            parts.append({"type": block.block_type})  # refused by the engine, naming the type
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def _image_part(block: ImageBlock) -> dict[str, Any]:
    """An image block as the engine's content part: its bytes (LlamaIndex keeps them
    base64-encoded), its local path, or its URL (a data URL or a file; http is refused)."""
    if block.image is not None:
        data = block.resolve_image(as_base64=False).read()  # raw bytes, from either form
        part: dict[str, Any] = {"type": "image", "base64": base64.b64encode(data).decode()}
        if block.image_mimetype:
            part["mime_type"] = block.image_mimetype
        return part
    if block.path is not None:
        return {"type": "image", "url": str(block.path)}
    return {"type": "image_url", "image_url": {"url": str(block.url or "")}}


def _tool_calls_of(message: ChatMessage) -> list[dict[str, Any]]:
    """OpenAI-shape calls of an assistant message, from its blocks or (from other LLMs) kwargs."""
    blocks = [b for b in message.blocks if isinstance(b, ToolCallBlock)]
    if blocks:
        return [
            _openai_call(b.tool_call_id or f"call_{i}", b.tool_name, b.tool_kwargs)
            for i, b in enumerate(blocks)
        ]
    calls = []
    for i, call in enumerate(message.additional_kwargs.get("tool_calls") or []):
        if isinstance(call, dict):
            function = call.get("function", {})
            calls.append(
                _openai_call(
                    call.get("id") or f"call_{i}", function["name"], function.get("arguments")
                )
            )
        else:  # an SDK object (e.g. openai's ChatCompletionMessageToolCall)
            calls.append(_openai_call(call.id, call.function.name, call.function.arguments))
    return calls


def _openai_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments or {}},
    }


def tool_call_block(call: ToolCall) -> ToolCallBlock:
    return ToolCallBlock(tool_call_id=call.id, tool_name=call.name, tool_kwargs=call.arguments)


def tool_calls_kwarg(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """``additional_kwargs["tool_calls"]``: OpenAI shape, arguments as a JSON string."""
    return [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
        }
        for call in calls
    ]


def tool_selections(message: ChatMessage) -> list[ToolSelection]:
    """The tool calls of an assistant message as LlamaIndex ``ToolSelection``s."""
    selections = []
    for call in _tool_calls_of(message):
        arguments = call["function"]["arguments"]
        selections.append(
            ToolSelection(
                tool_id=call["id"],
                tool_name=call["function"]["name"],
                tool_kwargs=arguments if isinstance(arguments, dict) else {},
            )
        )
    return selections
