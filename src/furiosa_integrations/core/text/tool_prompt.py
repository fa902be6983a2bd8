"""Tools and tool histories rendered into a prompt.

Templates that know tools (a ``tools`` variable) render them and the history's calls and
results themselves, from transformers' shape (adjusted to what the family's template
demands, ``ToolCallFormat.history_for_template``). For templates that do not (the default
SmolLM2 one) a system prompt of ours describes the tools and how to call them, and the
history's calls and results are written as text: calls in the request's format, results as
``<tool_response>`` blocks in a user turn.
"""

from __future__ import annotations

import json
from typing import Any

from ..tokenizer import Tokenizer
from .chat import apply_template
from .reasoning import chat_template_text
from .tool_formats import DEFAULT_FORMAT, ToolCallFormat, detect_format, format_named
from .tools import Tool, ToolChoice, call_arguments


def template_supports_tools(template: str) -> bool:
    """Whether the chat template renders a ``tools`` variable itself."""
    return "tools" in template


def request_format(template: str, tool_call_format: str | None = None) -> ToolCallFormat:
    """The call format of a request: the one named, else the one the template writes, else
    ours (Hermes)."""
    if tool_call_format is not None:
        return format_named(tool_call_format, template)
    native = detect_format(template) if template_supports_tools(template) else None
    return native if native is not None else DEFAULT_FORMAT.for_template(template)


def has_tool_history(messages: list[dict[str, Any]]) -> bool:
    """Whether the history holds assistant tool calls or tool results (they need rendering)."""
    return any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)


def history_for_template(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For templates that know tools: calls in transformers' shape (arguments as a dict)."""
    out = []
    for i, message in enumerate(messages):
        message = dict(message)
        if message.get("tool_calls"):
            calls = []
            for j, call in enumerate(message["tool_calls"]):
                name, arguments, call_id = call_arguments(call, f"messages[{i}].tool_calls[{j}]")
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


def history_as_text(
    messages: list[dict[str, Any]], fmt: ToolCallFormat | None = None
) -> list[dict[str, Any]]:
    """For templates that know only role and content: calls and results written as text.

    An assistant's calls follow its content in ``fmt`` (Hermes by default); tool results
    become a user turn of ``<tool_response>`` blocks (consecutive results share one turn).
    """
    fmt = fmt if fmt is not None else DEFAULT_FORMAT()
    out: list[dict[str, Any]] = []
    names_by_id: dict[str, str] = {}
    for i, message in enumerate(messages):
        role = message.get("role")
        if message.get("tool_calls"):
            texts = [message["content"]] if isinstance(message.get("content"), str) else []
            texts = [t for t in texts if t.strip()]
            calls = []
            for j, call in enumerate(message["tool_calls"]):
                name, arguments, call_id = call_arguments(call, f"messages[{i}].tool_calls[{j}]")
                if call_id:
                    names_by_id[call_id] = name
                calls.append((name, arguments))
            texts.append(fmt.render_calls(calls))
            text_message = {k: v for k, v in message.items() if k != "tool_calls"}
            out.append({**text_message, "role": "assistant", "content": "\n".join(texts)})
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


def _instructions(
    tools: list[Tool], choice: ToolChoice, fmt: ToolCallFormat, with_syntax: bool
) -> str:
    """Our system text: the tools (``with_syntax`` adds how to call), and what to call."""
    lines: list[str] = []
    if with_syntax:
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
    lines.append(fmt.how_to_call)
    lines.append(fmt.render_calls([("<function-name>", {"<argument>": "<value>"})]))
    return "\n".join(lines)


def _must_call(choice: ToolChoice) -> str:
    if choice.mode == "required":
        return "You must call at least one function."
    if choice.mode == "named":
        return f"You must call the function {choice.name}."
    return ""


def _with_system_text(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Add ``text`` to the system message, or start with one."""
    if not text:
        return messages
    if messages and messages[0].get("role") == "system" and isinstance(messages[0]["content"], str):
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{text}".strip()}
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def needs_tool_prompt(messages: list[dict[str, Any]], tools: Any, tool_choice: Any) -> bool:
    """Whether a chat renders through ``render_tool_prompt``: tools offered, a tool choice
    that constrains, or tool calls / results in its history."""
    return bool(tools) or tool_choice not in (None, "none", "auto") or has_tool_history(messages)


def render_tool_prompt(
    tokenizer: Tokenizer,
    messages: list[dict[str, Any]],
    tools: list[Tool],
    choice: ToolChoice,
    chat_template_kwargs: dict[str, Any] | None,
    add_generation_prompt: bool = True,
    fmt: ToolCallFormat | None = None,
) -> str:
    """The prompt for a chat with tools (or with tool calls in its history); ``fmt``: the
    call format of the request (``request_format``'s choice by default)."""
    template = chat_template_text(tokenizer, chat_template_kwargs)
    fmt = fmt if fmt is not None else request_format(template)
    kwargs = dict(chat_template_kwargs or {})
    kwargs.pop("tools", None)
    kwargs["add_generation_prompt"] = add_generation_prompt
    offered = tools if choice.mode != "none" else []
    if template_supports_tools(template):
        native = detect_format(template)
        history = history_for_template(messages)
        if native is not None:
            history = native.history_for_template(history)
        if offered:
            # The template describes its own syntax; a format it does not write is taught.
            taught = native is None or native.name != fmt.name
            text = _instructions(offered, choice, fmt, False) if taught else ""
            history = _with_system_text(
                history, "\n".join(filter(None, [text, _must_call(choice)]))
            )
        specs = [t.openai_spec() for t in offered] or None
        return apply_template(tokenizer, history, tools=specs, **kwargs)
    history = history_as_text(messages, fmt)
    if offered:
        text = "\n".join(
            filter(None, [_instructions(offered, choice, fmt, True), _must_call(choice)])
        )
        history = _with_system_text(history, text)
    return apply_template(tokenizer, history, **kwargs)


__all__ = [
    "has_tool_history",
    "history_as_text",
    "history_for_template",
    "needs_tool_prompt",
    "render_tool_prompt",
    "request_format",
    "template_supports_tools",
]
