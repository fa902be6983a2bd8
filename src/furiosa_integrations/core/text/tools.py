"""Offered tools and ``tool_choice``, validated (OpenAI's function-tool shapes).

``normalize_tools`` checks what callers offer (``{"type": "function", "function": {...}}``
or the bare ``{"name", "description", "parameters"}`` dict); ``normalize_tool_choice``
turns ``tool_choice`` into one of auto, none, required or a named tool; ``call_arguments``
reads a call from a history message. All raise ``InvalidRequestError`` before queuing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ...errors import InvalidRequestError
from ..structured_outputs import check_json_schema

_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class Tool:
    """One offered function tool, validated."""

    name: str
    description: str
    parameters: dict[str, Any]

    def openai_spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True)
class ToolChoice:
    """``mode`` is auto, none, required or named (then ``name`` is the tool)."""

    mode: str
    name: str | None = None


def normalize_tools(tools: Any) -> list[Tool]:
    """Check OpenAI function-format tools (``{"type": "function", "function": {...}}``;
    the bare ``{"name", "description", "parameters"}`` dict is accepted too)."""
    if tools is None:
        return []
    if not isinstance(tools, (list, tuple)):
        raise InvalidRequestError(f"tools must be a list of tool dicts, got {type(tools).__name__}")
    out: list[Tool] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequestError(f"tools[{i}] must be a dict, got {type(tool).__name__}")
        kind = tool.get("type", "function")
        if kind != "function":
            raise InvalidRequestError(f"tools[{i}].type must be 'function', got {kind!r}")
        function = tool.get("function", tool)
        if not isinstance(function, dict):
            raise InvalidRequestError(f"tools[{i}].function must be a dict")
        name = function.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequestError(f"tools[{i}] needs a non-empty string name, got {name!r}")
        if name in seen:
            raise InvalidRequestError(f"tools[{i}]: the tool name {name!r} is offered twice")
        seen.add(name)
        description = function.get("description") or ""
        if not isinstance(description, str):
            raise InvalidRequestError(f"tools[{i}].description must be a string")
        parameters = function.get("parameters")
        if parameters is None:
            parameters = dict(_EMPTY_PARAMETERS)
        what = f"tools[{i}] ({name}) parameters"
        if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
            raise InvalidRequestError(
                f"{what} must be a JSON schema of type 'object', got {parameters!r}"
            )
        check_json_schema(parameters, what)
        out.append(Tool(name, description, parameters))
    return out


def normalize_tool_choice(tool_choice: Any, tools: list[Tool]) -> ToolChoice:
    """``None`` means auto when tools are offered, none otherwise. ``"any"`` (LangChain's
    word) means required. A tool name, or ``{"type": "function", "function": {"name"}}``,
    forces that tool."""
    names = [t.name for t in tools]
    if tool_choice is None:
        return ToolChoice("auto" if tools else "none")
    name: Any = None
    if isinstance(tool_choice, str):
        if tool_choice in ("auto", "none", "required", "any") and tool_choice not in names:
            mode = "required" if tool_choice == "any" else tool_choice
            if mode == "required" and not tools:
                raise InvalidRequestError("tool_choice 'required' needs at least one tool")
            return ToolChoice(mode if tools else "none")
        name = tool_choice
    elif isinstance(tool_choice, dict):
        kind = tool_choice.get("type")
        if kind in ("auto", "none", "required", "any") and "function" not in tool_choice:
            return normalize_tool_choice(kind, tools)
        if kind not in (None, "function"):
            raise InvalidRequestError(f"tool_choice has an unknown type {kind!r}")
        function = tool_choice.get("function", tool_choice)
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise InvalidRequestError(f"tool_choice must name a function, got {tool_choice!r}")
    else:
        raise InvalidRequestError(
            "tool_choice must be 'auto', 'none', 'required', a tool name or "
            f"{{'type': 'function', 'function': {{'name': ...}}}}, got {tool_choice!r}"
        )
    if name not in names:
        raise InvalidRequestError(
            f"tool_choice names the tool {name!r}, which is not among the offered tools {names}"
        )
    return ToolChoice("named", name)


def call_arguments(call: Any, where: str) -> tuple[str, dict[str, Any], str | None]:
    """Name, arguments (as a dict) and id of one OpenAI-style (or LangChain-style) call."""
    if not isinstance(call, dict):
        raise InvalidRequestError(f"{where} must be a dict")
    function = call.get("function", call)
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(f"{where} needs a function name")
    arguments = function.get("arguments", function.get("args", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"{where}.arguments is not valid JSON: {exc}") from exc
    if not isinstance(arguments, dict):
        raise InvalidRequestError(f"{where}.arguments must be a JSON object")
    call_id = call.get("id")
    return name, arguments, call_id if isinstance(call_id, str) else None


__all__ = ["Tool", "ToolChoice", "call_arguments", "normalize_tool_choice", "normalize_tools"]
