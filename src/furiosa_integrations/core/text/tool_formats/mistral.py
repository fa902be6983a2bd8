"""Mistral: ``[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]`` (v0.3 templates), or
``[TOOL_CALLS]name[ARGS]{...}`` per call (v11 tokenizers: Mistral Small 3.2, Magistral).

Mistral's templates render the tools in ``[AVAILABLE_TOOLS]`` before the last user turn
and results as ``[TOOL_RESULTS] {"content": ..., "call_id": ...}``, and they refuse call ids
that are not 9 alphanumeric characters: ids are made that way, and a history's other ids
(``call_...``) are mapped onto such ids, the same one for a call and its result.
``[TOOL_CALLS]`` is a special token of Mistral's tokenizers, so the output keeps special
tokens for the parser to see it (``ToolCallFormat.markers``).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from collections.abc import Sequence
from typing import Any

from ...outputs import ToolCall
from ..tools import Tool, ToolChoice
from .base import Schemas, ToolCallFormat, Trigger, json_call, json_value_end

TOOL_CALLS = "[TOOL_CALLS]"
ARGS = "[ARGS]"
_ID_CHARS = string.ascii_letters + string.digits
_VALID_ID = re.compile(r"[A-Za-z0-9]{9}")
_NAME = re.compile(r"\s*[A-Za-z0-9_.\-]*\s*")


def mistral_call_id(source: str | None = None) -> str:
    """Nine alphanumeric characters: random, or derived from ``source`` (stable)."""
    if source is None:
        return "".join(random.choices(_ID_CHARS, k=9))
    digest = hashlib.sha256(source.encode()).digest()
    return "".join(_ID_CHARS[b % len(_ID_CHARS)] for b in digest[:9])


class Mistral(ToolCallFormat):
    name = "mistral"
    triggers = (Trigger(TOOL_CALLS),)
    separator = ", "
    how_to_call = (
        f"To call functions, write {TOOL_CALLS} followed by a JSON list of calls, each with "
        'the function\'s "name" and its "arguments":'
    )

    def __init__(self, per_call: bool = False, space: bool = True) -> None:
        self.per_call = per_call  # v11: [TOOL_CALLS]name[ARGS]{...} for each call
        self.space = space  # v0.3 templates write "[TOOL_CALLS] [" with a space
        if per_call:
            self.separator = ""  # each call opens with its own [TOOL_CALLS]

    @classmethod
    def matches(cls, template: str) -> bool:
        return TOOL_CALLS in template

    @classmethod
    def for_template(cls, template: str) -> Mistral:
        if ARGS in template:
            return cls(per_call=True)
        return cls(space=TOOL_CALLS + "[" not in template)

    # ---- the output ----

    def block_end(self, body: str) -> int | None:
        stripped = body.lstrip()
        if stripped.startswith("["):  # a JSON list of calls
            return json_value_end(body)
        args = body.find(ARGS)
        if args == -1:
            # A bare name so far (v11, maybe with the start of its [ARGS]) may still become
            # a call; anything else is none.
            partial = next((k for k in range(len(ARGS) - 1, 0, -1) if body.endswith(ARGS[:k])), 0)
            return None if _NAME.fullmatch(body[: len(body) - partial]) else 0
        if not _NAME.fullmatch(body[:args]):
            return 0
        return json_value_end(body, args + len(ARGS))

    def parse_block(self, block: str, names: Schemas | None) -> list[ToolCall] | None:
        args = block.find(ARGS)
        if not block.lstrip().startswith("[") and args != -1:
            try:
                arguments = json.loads(block[args + len(ARGS) :])
            except json.JSONDecodeError:
                return None
            call = json_call({"name": block[:args].strip(), "arguments": arguments}, names)
            return None if call is None else [call]
        try:
            value = json.loads(block)
        except json.JSONDecodeError:
            return None
        if not isinstance(value, list) or not value:
            return None
        calls = [json_call(item, names) for item in value]
        return None if any(c is None for c in calls) else [c for c in calls if c is not None]

    def new_call_id(self) -> str:
        return mistral_call_id()

    # ---- the constraint ----

    def _opening(self) -> str:
        return TOOL_CALLS + (" [" if self.space else "[")

    def call_tag(self, tool: Tool) -> dict[str, Any]:
        schema = {"type": "json_schema", "json_schema": tool.parameters}
        if self.per_call:
            return {
                "type": "tag",
                "begin": f"{TOOL_CALLS}{tool.name}{ARGS}",
                "content": schema,
                "end": "",
            }
        return {
            "type": "tag",
            "begin": f'{{"name": {json.dumps(tool.name)}, "arguments": ',
            "content": schema,
            "end": "}",
        }

    def constraint(self, tools: Sequence[Tool], choice: ToolChoice, single: bool) -> dict[str, Any]:
        if self.per_call:  # one tag per call, as most families
            return super().constraint(tools, choice, single)
        chosen = [t for t in tools if choice.mode in ("auto", "required") or t.name == choice.name]
        calls = {
            "type": "tags_with_separator",
            "tags": [self.call_tag(t) for t in chosen],
            "separator": self.separator,
            "at_least_one": True,
            "stop_after_first": choice.mode == "named" or single,
        }
        if choice.mode == "auto":  # one list of calls, once [TOOL_CALLS] appears
            block = {"type": "tag", "begin": self._opening(), "content": calls, "end": "]"}
            return {
                "type": "triggered_tags",
                "triggers": [TOOL_CALLS],
                "tags": [block],
                "stop_after_first": True,
            }
        return {
            "type": "sequence",
            "elements": [
                {"type": "const_string", "value": self._opening()},
                calls,
                {"type": "const_string", "value": "]"},
            ],
        }

    # ---- writing calls ----

    def render_calls(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> str:
        if self.per_call:
            return "".join(
                f"{TOOL_CALLS}{name}{ARGS}{json.dumps(arguments, ensure_ascii=False)}"
                for name, arguments in calls
            )
        items = [{"name": name, "arguments": arguments} for name, arguments in calls]
        return self._opening()[:-1] + json.dumps(items, ensure_ascii=False)

    def history_for_template(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def fit(call_id: Any) -> Any:
            if not isinstance(call_id, str) or _VALID_ID.fullmatch(call_id):
                return call_id
            return mistral_call_id(call_id)

        out = []
        for message in messages:
            message = dict(message)
            if message.get("tool_calls"):
                message["tool_calls"] = [
                    {**call, "id": fit(call.get("id"))} for call in message["tool_calls"]
                ]
            if message.get("role") == "tool" and "tool_call_id" in message:
                message["tool_call_id"] = fit(message["tool_call_id"])
            out.append(message)
        return out


__all__ = ["Mistral", "mistral_call_id"]
