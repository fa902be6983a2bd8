"""Streaming parser of tool calls, in any model family's format (``tool_formats``).

Text outside calls streams through as content; from the moment the text might be the
start of a trigger (``<tool_call>``, ``[TOOL_CALLS]``, Llama's ``{"name"``) it is held
back, and the calls of a block come out whole once the format says the block is complete.
A block that does not read as calls of offered tools stays in the text.

Two habits of small models are undone here, on every backend and in every format: a call
repeated word for word in the same turn is dropped and ends the turn (``done``), and the
``<tool_response>`` wrapper that tool results are rendered in is taken out of the answer
when the model echoes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection

from ..outputs import ToolCall
from .tool_formats.base import Schemas, ToolCallFormat, Trigger, new_tool_call_id
from .tool_formats.hermes import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, Hermes

TOOL_RESPONSE_OPEN = "<tool_response"  # the tag may carry a name="..." attribute
TOOL_RESPONSE_CLOSE = "</tool_response>"
_RESPONSE_TAG = re.compile(r"</?tool_response(?:\s[^<>]*)?>\n?")


def held_tag_prefix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ToolCallParser:
    """A ``TextParser``: content streams through, each complete call comes out as a ToolCall.

    ``names``: the offered tools (or ``schemas``, their parameter schemas by name, which
    XML-style formats type values with); a call naming anything else stays in the text.
    ``fmt``: the call syntax (Hermes' ``<tool_call>`` tags by default).
    """

    def __init__(
        self,
        names: Collection[str] | None = None,
        *,
        fmt: ToolCallFormat | None = None,
        schemas: Schemas | None = None,
    ) -> None:
        self.fmt = fmt if fmt is not None else Hermes()
        if schemas is not None:
            self.names: Schemas | None = dict(schemas)
        else:
            self.names = {name: {} for name in names} if names is not None else None
        self._buffer = ""
        self._trigger: Trigger | None = None  # set while inside a block of calls
        self._strip: str | None = ""  # what to drop before the next content ("": nothing)
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
            if self._trigger is None:
                found = self._find_trigger()
                if found is None:
                    ready = len(self._buffer) - self._held_back()
                    content.append(self._content(self._buffer[:ready]))
                    self._buffer = self._buffer[ready:]
                    break
                start, self._trigger = found
                content.append(self._content(self._buffer[:start]))
                self._buffer = self._buffer[start + len(self._trigger.text) :]
            else:
                lead = self._lead()
                end = self.fmt.block_end(lead + self._buffer)
                if end is None:
                    break
                end = max(0, end - len(lead))
                block, self._buffer = self._buffer[:end], self._buffer[end:]
                trigger, self._trigger = self._trigger, None
                if not self._take_block(trigger, block, calls):
                    content.append(self._content(trigger.text + block))
        return "".join(content), "", calls

    def finish(self) -> tuple[str, str, list[ToolCall]]:
        rest, self._buffer = self._buffer, ""
        if self._done:
            return "", "", []
        if self._trigger is None:
            return self._content(rest, final=True), "", []
        # Cut off before the block ended (length, stop string): keep it if it reads whole.
        trigger, self._trigger = self._trigger, None
        calls: list[ToolCall] = []
        if self._take_block(trigger, rest, calls):
            return "", "", calls
        return self._content(trigger.text + rest, final=True), "", []

    # ---- blocks ----

    def _lead(self) -> str:
        assert self._trigger is not None
        return self._trigger.text if self._trigger.kept else ""

    def _take_block(self, trigger: Trigger, block: str, calls: list[ToolCall]) -> bool:
        """Add the calls of ``block`` to ``calls``; False when it holds none (then it is
        text)."""
        lead = trigger.text if trigger.kept else ""
        parsed = self.fmt.parse_block(lead + block, self.names)
        if parsed is None:
            return False
        for call in parsed:
            if self._is_repeat(call):
                self._done, self._buffer = True, ""  # the model loops: the turn is over
                break
            call.id = self.fmt.new_call_id()
            calls.append(call)
        self._strip = self.fmt.between_calls
        return True

    def _find_trigger(self) -> tuple[int, Trigger] | None:
        best: tuple[int, Trigger] | None = None
        for trigger in self.fmt.triggers:
            start = self._buffer.find(trigger.text)
            if start != -1 and (best is None or start < best[0]):
                best = (start, trigger)
        return best

    def _is_repeat(self, call: ToolCall) -> bool:
        key = json.dumps([call.name, call.arguments], sort_keys=True, ensure_ascii=False)
        if key in self._seen:
            return True
        self._seen.add(key)
        return False

    # ---- content ----

    def _content(self, text: str, final: bool = False) -> str:
        text, removed = _RESPONSE_TAG.subn("", text)
        if removed and not text.strip():
            self._strip = None  # the answer starts after the echoed wrapper
        if final:  # a partial tag left at the very end
            text = text[: len(text) - held_tag_prefix(text, TOOL_RESPONSE_CLOSE)]
            text = text[: len(text) - held_tag_prefix(text, TOOL_RESPONSE_OPEN)]
        if self._strip != "":
            text = text.lstrip(self._strip)
            if text:
                self._strip = ""
        return text

    def _held_back(self) -> int:
        """How much of the end of the buffer may still become a trigger, or an echoed
        tool-result wrapper (which can carry attributes up to its ``>``)."""
        text = self._buffer
        held = max(held_tag_prefix(text, t.text) for t in self.fmt.triggers)
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
    "held_tag_prefix",
    "new_tool_call_id",
]
