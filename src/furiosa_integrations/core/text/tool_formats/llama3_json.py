"""Llama 3.1 / 3.2 / 3.3: a bare JSON object, ``{"name": ..., "parameters": {...}}``.

The model answers with the object itself (sometimes after ``<|python_tag|>``); several
calls are separated by ``; `` (vLLM's ``llama3_json`` parser). Llama's templates render the
tools as JSON in the first user turn and tool results as ``ipython`` turns; ``arguments``
is read as well as ``parameters``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...outputs import ToolCall
from ..tools import Tool
from .base import Schemas, ToolCallFormat, Trigger, json_call, json_value_end

PYTHON_TAG = "<|python_tag|>"
CALL_START = '{"name"'


class Llama3Json(ToolCallFormat):
    name = "llama3_json"
    triggers = (Trigger(PYTHON_TAG), Trigger(CALL_START, kept=True))
    separator = "; "
    between_calls = "; \n"
    how_to_call = (
        'To call a function, answer with only a JSON object {"name": function name, '
        '"parameters": dictionary of argument name and its value}; separate several calls '
        "with '; ':"
    )

    @classmethod
    def matches(cls, template: str) -> bool:
        return PYTHON_TAG in template or "ipython" in template or '"parameters": ' in template

    @property
    def constraint_trigger(self) -> str:
        return '{"name": '

    def block_end(self, body: str) -> int | None:
        stripped = body.lstrip()
        if stripped and not stripped.startswith("{"):
            return 0  # not a call after <|python_tag|> (code, say): leave it as text
        return json_value_end(body)

    def parse_block(self, block: str, names: Schemas | None) -> list[ToolCall] | None:
        try:
            call = json_call(json.loads(block), names)
        except json.JSONDecodeError:
            return None
        return None if call is None else [call]

    def call_tag(self, tool: Tool) -> dict[str, Any]:
        return {
            "type": "tag",
            "begin": f'{{"name": {json.dumps(tool.name)}, "parameters": ',
            "content": {"type": "json_schema", "json_schema": tool.parameters},
            "end": "}",
        }

    def render_calls(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> str:
        return "; ".join(
            json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)
            for name, arguments in calls
        )


__all__ = ["Llama3Json"]
