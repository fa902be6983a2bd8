"""Hermes / Qwen 2.5 / Qwen3: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

Also the format of our own tool prompt, for templates that render no tools. Templates of
this family write the JSON on its own line (``<tool_call>\\n{...}\\n</tool_call>``); the
constraint follows the template, the parser reads both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...outputs import ToolCall
from ..tools import Tool
from .base import Schemas, ToolCallFormat, Trigger, json_call

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"


class Hermes(ToolCallFormat):
    name = "hermes"
    triggers = (Trigger(TOOL_CALL_OPEN),)
    how_to_call = (
        "To call a function, write its name and arguments as a JSON object within "
        f"{TOOL_CALL_OPEN}{TOOL_CALL_CLOSE} tags, one block per call:"
    )

    def __init__(self, newline: bool = False) -> None:
        self.newline = newline  # the JSON on its own line, as Hermes / Qwen templates write it

    @classmethod
    def matches(cls, template: str) -> bool:
        return TOOL_CALL_OPEN in template

    @classmethod
    def for_template(cls, template: str) -> Hermes:
        return cls(newline=f"{TOOL_CALL_OPEN}\\n" in template or f"{TOOL_CALL_OPEN}\n" in template)

    def block_end(self, body: str) -> int | None:
        end = body.find(TOOL_CALL_CLOSE)
        return None if end == -1 else end + len(TOOL_CALL_CLOSE)

    def parse_block(self, block: str, names: Schemas | None) -> list[ToolCall] | None:
        body = block.removesuffix(TOOL_CALL_CLOSE)
        try:
            call = json_call(json.loads(body), names)
        except json.JSONDecodeError:
            return None
        return None if call is None else [call]

    def call_tag(self, tool: Tool) -> dict[str, Any]:
        pad = "\n" if self.newline else ""
        return {
            "type": "tag",
            "begin": f'{TOOL_CALL_OPEN}{pad}{{"name": {json.dumps(tool.name)}, "arguments": ',
            "content": {"type": "json_schema", "json_schema": tool.parameters},
            "end": f"}}{pad}{TOOL_CALL_CLOSE}",
        }

    def render_calls(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> str:
        pad = "\n" if self.newline else ""
        return "\n".join(
            f"{TOOL_CALL_OPEN}{pad}"
            f"{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}"
            f"{pad}{TOOL_CALL_CLOSE}"
            for name, arguments in calls
        )


__all__ = ["TOOL_CALL_CLOSE", "TOOL_CALL_OPEN", "Hermes"]
