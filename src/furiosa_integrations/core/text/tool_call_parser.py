"""Streaming parser of tool calls, written as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

Text outside the tags streams through as content; from the moment the text might be the
start of ``<tool_call>`` it is held back, and each call is emitted whole once its closing
tag arrives. Hermes / Qwen templates write the same tags with newlines around the JSON;
both spellings parse.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from typing import Any

from ..outputs import ToolCall

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"


def held_tag_prefix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def format_tool_call(name: str, arguments: Any) -> str:
    """One call in our format (used for prompts, history and constraints alike)."""
    return (
        f"{TOOL_CALL_OPEN}"
        f"{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}"
        f"{TOOL_CALL_CLOSE}"
    )


def parse_tool_call(body: str, names: Collection[str] | None = None) -> ToolCall | None:
    """The call inside one pair of tags, or None when it is not a well-formed call."""
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    if not isinstance(name, str) or not isinstance(arguments, dict):
        return None
    if names is not None and name not in names:
        return None
    return ToolCall(id=new_tool_call_id(), name=name, arguments=arguments)


class ToolCallParser:
    """A ``TextParser``: content streams through, each complete call comes out as a ToolCall.

    ``names``: the offered tools; a call naming anything else stays in the text.
    """

    def __init__(self, names: Collection[str] | None = None) -> None:
        self.names = set(names) if names is not None else None
        self._buffer = ""
        self._inside = False
        self._after_call = False  # drop the whitespace that separates calls

    def feed(self, text: str) -> tuple[str, str, list[ToolCall]]:
        self._buffer += text
        content: list[str] = []
        calls: list[ToolCall] = []
        while True:
            if not self._inside:
                start = self._buffer.find(TOOL_CALL_OPEN)
                if start == -1:
                    ready = len(self._buffer) - held_tag_prefix(self._buffer, TOOL_CALL_OPEN)
                    content.append(self._content(self._buffer[:ready]))
                    self._buffer = self._buffer[ready:]
                    break
                content.append(self._content(self._buffer[:start]))
                self._buffer = self._buffer[start + len(TOOL_CALL_OPEN) :]
                self._inside = True
            else:
                end = self._buffer.find(TOOL_CALL_CLOSE)
                if end == -1:
                    break
                body = self._buffer[:end]
                self._buffer = self._buffer[end + len(TOOL_CALL_CLOSE) :]
                self._inside = False
                call = parse_tool_call(body, self.names)
                if call is None:
                    content.append(self._content(TOOL_CALL_OPEN + body + TOOL_CALL_CLOSE))
                else:
                    calls.append(call)
                    self._after_call = True
        return "".join(content), "", calls

    def finish(self) -> tuple[str, str, list[ToolCall]]:
        rest, self._buffer = self._buffer, ""
        if not self._inside:
            return self._content(rest), "", []
        self._inside = False
        # Cut off before the closing tag (length, stop string): keep it if the JSON is whole.
        call = parse_tool_call(rest, self.names)
        if call is not None:
            return "", "", [call]
        return self._content(TOOL_CALL_OPEN + rest), "", []

    def _content(self, text: str) -> str:
        if self._after_call:
            text = text.lstrip()
            if text:
                self._after_call = False
        return text


__all__ = [
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "ToolCallParser",
    "format_tool_call",
    "held_tag_prefix",
    "new_tool_call_id",
    "parse_tool_call",
]
