"""Tool calling: a tool-enabled chat request planned into a prompt, a constraint and a parser.

Calls are written ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (the
Hermes / Qwen format; several per turn); ``tool_prompt`` renders the tools and the
history, ``tool_call_parser`` reads the calls back. ``tool_choice`` is enforced by a
structural-tag constraint:

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

from ...errors import InvalidRequestError
from ..output_processor import TextParser
from ..sampling_params import SamplingParams
from ..structured_outputs import StructuredOutputsParams
from ..tokenizer import Tokenizer
from .reasoning import chat_template_text, reasoning_parser_factory
from .tool_call_parser import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, ToolCallParser
from .tool_prompt import render_tool_prompt
from .tools import Tool, ToolChoice, normalize_tool_choice, normalize_tools


@dataclass
class ToolPlan:
    """What a tool-enabled request becomes: a prompt, constrained params and a parser factory."""

    prompt: str
    params: SamplingParams
    parser_factory: Callable[[], TextParser] | None


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
    tokenizer: Tokenizer,
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


__all__ = ["ToolPlan", "call_tag", "plan_tool_request", "tool_call_constraint"]
