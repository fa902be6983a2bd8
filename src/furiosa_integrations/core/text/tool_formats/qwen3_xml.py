"""Qwen3-Coder / Qwen3.5 XML calls (vLLM's and furiosa-llm's ``qwen3_xml``)::

    <tool_call>
    <function=get_weather>
    <parameter=city>
    Paris
    </parameter>
    </function>
    </tool_call>

Values are raw text; the parser types them by the tool's schema (integers, numbers,
booleans, JSON for objects and arrays), as furiosa-llm's parser does. The constraint is
xgrammar's ``qwen_xml`` JSON-schema style, which writes exactly this syntax.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from typing import Any

from ...outputs import ToolCall
from ..tools import Tool
from .base import Schemas, ToolCallFormat, Trigger

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_FUNCTION = re.compile(r"<function=([^>\n]+)>(.*?)</function>", re.S)
_PARAMETER = re.compile(r"<parameter=([^>\n]+)>(.*?)</parameter>", re.S)


def _types(schema: Any) -> list[str]:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):
        return [str(k) for k in kind]
    return [str(kind)] if kind else []


def typed_value(raw: str, schema: Any) -> Any:
    """A parameter's raw text as the type its schema declares; text when it does not fit
    (a mistyped argument beats a dropped call)."""
    text = raw.removeprefix("\n").removesuffix("\n")
    kinds = _types(schema)
    if "string" in kinds or (isinstance(schema, dict) and "enum" in schema and not kinds):
        return text
    value = text.strip()
    if "null" in kinds and value.lower() in ("null", "none"):
        return None
    if "boolean" in kinds and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if "integer" in kinds:
        try:
            return int(value)
        except ValueError:
            pass
    if "number" in kinds or "integer" in kinds:
        try:
            number = float(value)
            return int(number) if number.is_integer() and "." not in value else number
        except ValueError:
            return text
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    if kinds and kinds != ["string"]:
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
    return text


class Qwen3Xml(ToolCallFormat):
    name = "qwen3_xml"
    triggers = (Trigger(TOOL_CALL_OPEN),)
    how_to_call = (
        "To call a function, reply in this format, one <tool_call> block per call and one "
        "<parameter> per argument:"
    )

    @classmethod
    def matches(cls, template: str) -> bool:
        return "<function=" in template and "<parameter=" in template

    def block_end(self, body: str) -> int | None:
        end = body.find(TOOL_CALL_CLOSE)
        return None if end == -1 else end + len(TOOL_CALL_CLOSE)

    def parse_block(self, block: str, names: Schemas | None) -> list[ToolCall] | None:
        body = block.removesuffix(TOOL_CALL_CLOSE)
        calls = []
        for match in _FUNCTION.finditer(body):
            name = match.group(1).strip()
            if names is not None and name not in names:
                return None
            properties = ((names or {}).get(name) or {}).get("properties", {})
            arguments = {
                key.strip(): typed_value(value, properties.get(key.strip()))
                for key, value in _PARAMETER.findall(match.group(2))
            }
            calls.append(ToolCall(id="", name=name, arguments=arguments))
        return calls or None

    def call_tag(self, tool: Tool) -> dict[str, Any]:
        return {
            "type": "tag",
            "begin": f"{TOOL_CALL_OPEN}\n<function={tool.name}>\n",
            "content": {"type": "json_schema", "json_schema": tool.parameters, "style": "qwen_xml"},
            "end": f"\n</function>\n{TOOL_CALL_CLOSE}",
        }

    def render_calls(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> str:
        blocks = []
        for name, arguments in calls:
            parameters = "".join(
                f"<parameter={key}>\n"
                f"{value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
                "\n</parameter>\n"
                for key, value in arguments.items()
            )
            blocks.append(
                f"{TOOL_CALL_OPEN}\n<function={name}>\n{parameters}</function>\n{TOOL_CALL_CLOSE}"
            )
        return "\n".join(blocks)


__all__ = ["Qwen3Xml", "typed_value"]
