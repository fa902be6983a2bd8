"""Tool calling: validate tools, render them into the prompt, constrain the calls, parse them.

Calls are written ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (the
Hermes / Qwen format; several per turn). Tools are rendered with the model's chat
template when it knows about tools, otherwise with a system prompt of our own (the
default SmolLM2 template has no tool support); in that case assistant tool calls and tool
results in the history are written as text in the same format. ``tool_choice`` is
enforced by a structural-tag constraint:

- ``auto``: free text, but once ``<tool_call>`` appears, the call must name an offered
  tool and its arguments must match that tool's schema;
- ``required``: the whole output is one or more calls of offered tools;
- a named tool: the whole output is exactly one call of that tool;
- ``none``: tools are not rendered and no call is parsed.

``parallel_tool_calls=False`` (OpenAI's option, an argument of the engine's ``stream``)
allows at most one call per turn in every mode.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .chat import apply_template
from .errors import InvalidRequestError
from .output_processor import TextParser
from .reasoning import chat_template_text, reasoning_parser_factory
from .sampling import SamplingParams
from .structured import StructuredOutputsParams, check_json_schema
from .tool_call_parser import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, ToolCallParser, format_tool_call

_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass
class ToolPlan:
    """What a tool-enabled request becomes: a prompt, constrained params and a parser factory."""

    prompt: str
    params: SamplingParams
    parser_factory: Callable[[], TextParser] | None


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


# ---- validation ----


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


# ---- prompt ----


def template_supports_tools(template: str) -> bool:
    """Whether the chat template renders a ``tools`` variable itself."""
    return "tools" in template


def has_tool_history(messages: list[dict[str, Any]]) -> bool:
    """Whether the history holds assistant tool calls or tool results (they need rendering)."""
    return any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)


def _call_arguments(call: Any, where: str) -> tuple[str, dict[str, Any], str | None]:
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


def history_for_template(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For templates that know tools: calls in transformers' shape (arguments as a dict)."""
    out = []
    for i, message in enumerate(messages):
        message = dict(message)
        if message.get("tool_calls"):
            calls = []
            for j, call in enumerate(message["tool_calls"]):
                name, arguments, call_id = _call_arguments(call, f"messages[{i}].tool_calls[{j}]")
                calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                )
            message["tool_calls"] = calls
        out.append(message)
    return out


def history_as_text(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For templates that know only role and content: calls and results written as text.

    An assistant's calls follow its content in our call format; tool results become a user
    turn of ``<tool_response>`` blocks (consecutive results share one turn).
    """
    out: list[dict[str, Any]] = []
    names_by_id: dict[str, str] = {}
    for i, message in enumerate(messages):
        role = message.get("role")
        if message.get("tool_calls"):
            texts = [message["content"]] if isinstance(message.get("content"), str) else []
            texts = [t for t in texts if t.strip()]
            for j, call in enumerate(message["tool_calls"]):
                name, arguments, call_id = _call_arguments(call, f"messages[{i}].tool_calls[{j}]")
                if call_id:
                    names_by_id[call_id] = name
                texts.append(format_tool_call(name, arguments))
            out.append({"role": "assistant", "content": "\n".join(texts)})
        elif role == "tool":
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            result_of = message.get("name") or names_by_id.get(str(message.get("tool_call_id")))
            label = f' name="{result_of}"' if result_of else ""
            block = f"<tool_response{label}>\n{text}\n</tool_response>"
            previous = out[-1] if out else None
            if previous is not None and previous.get("_tool_results"):
                previous["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_tool_results": True})
        else:
            out.append(dict(message))
    for message in out:
        message.pop("_tool_results", None)
    return out


def _instructions(tools: list[Tool], choice: ToolChoice, with_signatures: bool) -> str:
    lines: list[str] = []
    if with_signatures:
        lines += [
            "# Tools",
            "",
            "You may call one or more functions to help with the user's request. "
            "The functions are described by JSON schemas within <tools></tools>:",
            "<tools>",
            *(json.dumps(t.openai_spec(), ensure_ascii=False) for t in tools),
            "</tools>",
            "",
        ]
    lines.append(
        "To call a function, write its name and arguments as a JSON object within "
        f"{TOOL_CALL_OPEN}{TOOL_CALL_CLOSE} tags, one block per call:"
    )
    lines.append(format_tool_call("<function-name>", {"<argument>": "<value>"}))
    if choice.mode == "required":
        lines.append("You must call at least one function.")
    elif choice.mode == "named":
        lines.append(f"You must call the function {choice.name}.")
    return "\n".join(lines)


def _with_system_text(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Add ``text`` to the system message, or start with one."""
    if messages and messages[0].get("role") == "system" and isinstance(messages[0]["content"], str):
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{text}".strip()}
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def needs_tool_prompt(messages: list[dict[str, Any]], tools: Any, tool_choice: Any) -> bool:
    """Whether a chat renders through ``render_tool_prompt``: tools offered, a tool choice
    that constrains, or tool calls / results in its history."""
    return bool(tools) or tool_choice not in (None, "none", "auto") or has_tool_history(messages)


def render_tool_prompt(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    tools: list[Tool],
    choice: ToolChoice,
    chat_template_kwargs: dict[str, Any] | None,
    add_generation_prompt: bool = True,
) -> str:
    """The prompt for a chat with tools (or with tool calls in its history)."""
    template = chat_template_text(tokenizer, chat_template_kwargs)
    kwargs = dict(chat_template_kwargs or {})
    kwargs.pop("tools", None)
    kwargs["add_generation_prompt"] = add_generation_prompt
    offered = tools if choice.mode != "none" else []
    if template_supports_tools(template):
        history = history_for_template(messages)
        if offered and TOOL_CALL_OPEN not in template:
            # The template renders the tools but not our call format: say how to call.
            history = _with_system_text(history, _instructions(offered, choice, False))
        elif offered and choice.mode in ("required", "named"):
            history = _with_system_text(history, _instructions(offered, choice, False))
        specs = [t.openai_spec() for t in offered] or None
        return apply_template(tokenizer, history, tools=specs, **kwargs)
    history = history_as_text(messages)
    if offered:
        history = _with_system_text(history, _instructions(offered, choice, True))
    return apply_template(tokenizer, history, **kwargs)


# ---- constraint ----


def call_tag(tool: Tool, newline: bool) -> dict[str, Any]:
    """A structural tag matching one call of ``tool`` whose arguments follow its schema."""
    pad = "\n" if newline else ""
    return {
        "type": "tag",
        "begin": f'{TOOL_CALL_OPEN}{pad}{{"name": {json.dumps(tool.name)}, "arguments": ',
        "content": {"type": "json_schema", "json_schema": tool.parameters},
        "end": f"}}{pad}{TOOL_CALL_CLOSE}",
    }


def tool_call_constraint(
    tools: list[Tool], choice: ToolChoice, newline: bool = False, single: bool = False
) -> StructuredOutputsParams | None:
    """The structural tag enforcing ``choice``; None for ``none``. ``single``: at most one
    call, generation ends after it (``parallel_tool_calls=False``)."""
    if choice.mode == "none":
        return None
    if choice.mode == "auto":
        tags = [call_tag(t, newline) for t in tools]
        fmt: dict[str, Any] = {"type": "triggered_tags", "triggers": [TOOL_CALL_OPEN], "tags": tags}
        if single:
            fmt["stop_after_first"] = True
    else:
        chosen = [t for t in tools if choice.mode == "required" or t.name == choice.name]
        fmt = {
            "type": "tags_with_separator",
            "tags": [call_tag(t, newline) for t in chosen],
            "separator": "\n",
            "at_least_one": True,
            # A named tool is called once (as OpenAI does); required allows several calls.
            "stop_after_first": choice.mode == "named" or single,
        }
    return StructuredOutputsParams(structural_tag={"type": "structural_tag", "format": fmt})


# ---- the plan ----


def plan_tool_request(
    engine: Any,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    tool_choice: Any,
    params: SamplingParams,
    chat_template_kwargs: dict[str, Any] | None,
    *,
    parallel_tool_calls: bool = True,
) -> ToolPlan:
    """Validate tools and tool_choice, render the prompt, add the constraint and parser.

    ``parallel_tool_calls=False`` allows at most one call (generation ends after it).

    Raises ``InvalidRequestError`` before anything is queued.
    """
    offered = normalize_tools(tools)
    choice = normalize_tool_choice(tool_choice, offered)
    tokenizer = engine.tokenizer
    prompt = render_tool_prompt(tokenizer, messages, offered, choice, chat_template_kwargs)
    template = chat_template_text(tokenizer, chat_template_kwargs)
    # Hermes / Qwen templates write the JSON on its own line; follow the template.
    newline = f"{TOOL_CALL_OPEN}\\n" in template or f"{TOOL_CALL_OPEN}\n" in template
    constraint = tool_call_constraint(offered, choice, newline, single=not parallel_tool_calls)
    if constraint is not None:
        if params.structured_outputs is not None:
            raise InvalidRequestError(
                "structured_outputs cannot be combined with tools (tool_choice "
                f"{choice.mode!r} constrains the output itself); use tool_choice='none'"
            )
        params = params.clone(structured_outputs=constraint)
    tool_parser: Callable[[], TextParser] | None = None
    if choice.mode != "none":
        names = [t.name for t in offered if choice.mode != "named" or t.name == choice.name]
        tool_parser = lambda: ToolCallParser(names)  # noqa: E731
    parser_factory = reasoning_parser_factory(tokenizer, prompt, chat_template_kwargs, tool_parser)
    return ToolPlan(prompt=prompt, params=params, parser_factory=parser_factory)


__all__ = [
    "Tool",
    "ToolChoice",
    "ToolPlan",
    "has_tool_history",
    "history_as_text",
    "normalize_tool_choice",
    "normalize_tools",
    "plan_tool_request",
    "render_tool_prompt",
    "tool_call_constraint",
]
