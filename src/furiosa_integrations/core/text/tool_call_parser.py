"""Streaming parser of tool calls, written as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

Text outside the tags streams through as content; from the moment the text might be the
start of ``<tool_call>`` it is held back, and each call is emitted whole once its closing
tag arrives. Hermes / Qwen templates write the same tags with newlines around the JSON;
both spellings parse.

Two habits of small models are undone here, on every backend: a call repeated word for
word in the same turn is dropped and ends the turn (``done``), and the
``<tool_response>`` wrapper that tool results are rendered in is taken out of the
answer when the model echoes it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection
from typing import Any

from ..outputs import ToolCall

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
TOOL_RESPONSE_OPEN = "<tool_response"  # the tag may carry a name="..." attribute
TOOL_RESPONSE_CLOSE = "</tool_response>"
_RESPONSE_TAG = re.compile(r"</?tool_response(?:\s[^<>]*)?>\n?")


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
        self._drop_space = False  # drop the whitespace after a call or a removed wrapper
        self._seen: set[str] = set()  # the calls of this turn, as canonical JSON
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, text: str) -> tuple[str, str, list[ToolCall]]:
        self._buffer += text
        content: list[str] = []
        calls: list[ToolCall] = []
        while not self._done:
            if not self._inside:
                start = self._buffer.find(TOOL_CALL_OPEN)
                if start == -1:
                    ready = len(self._buffer) - _held_back(self._buffer)
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
                elif self._is_repeat(call):
                    self._done, self._buffer = True, ""  # the model loops: the turn is over
                else:
                    calls.append(call)
                    self._drop_space = True
        return "".join(content), "", calls

    def finish(self) -> tuple[str, str, list[ToolCall]]:
        rest, self._buffer = self._buffer, ""
        if self._done:
            return "", "", []
        if not self._inside:
            return self._content(rest, final=True), "", []
        self._inside = False
        # Cut off before the closing tag (length, stop string): keep it if the JSON is whole.
        call = parse_tool_call(rest, self.names)
        if call is not None and not self._is_repeat(call):
            return "", "", [call]
        if call is not None:
            return "", "", []
        return self._content(TOOL_CALL_OPEN + rest, final=True), "", []

    def _is_repeat(self, call: ToolCall) -> bool:
        key = json.dumps([call.name, call.arguments], sort_keys=True, ensure_ascii=False)
        if key in self._seen:
            return True
        self._seen.add(key)
        return False

    def _content(self, text: str, final: bool = False) -> str:
        text, removed = _RESPONSE_TAG.subn("", text)
        if removed and not text.strip():
            self._drop_space = True  # the answer starts after the echoed wrapper
        if final:  # a partial tag left at the very end
            text = text[: len(text) - held_tag_prefix(text, TOOL_RESPONSE_CLOSE)]
            text = text[: len(text) - held_tag_prefix(text, TOOL_RESPONSE_OPEN)]
        if self._drop_space:
            text = text.lstrip()
            if text:
                self._drop_space = False
        return text


def _held_back(text: str) -> int:
    """How much of the end of ``text`` may still become a tag (a call, or an echoed
    tool-result wrapper, which can carry attributes up to its ``>``)."""
    held = held_tag_prefix(text, TOOL_CALL_OPEN)
    for tag in (TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE):
        held = max(held, held_tag_prefix(text, tag))
        start = text.rfind(tag)
        if start != -1 and ">" not in text[start:]:  # an open tag still taking attributes
            held = max(held, len(text) - start)
    return held


__all__ = [
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "ToolCallParser",
    "format_tool_call",
    "held_tag_prefix",
    "new_tool_call_id",
    "parse_tool_call",
]
