"""Tool calling: a tool-enabled chat request planned into a prompt, a constraint and a parser.

The call syntax is the model's own: the format the chat template writes (``tool_formats``:
hermes, llama3_json, mistral, qwen3_xml), or the one named by ``tool_call_format``, or,
for templates that render no tools, the Hermes format our own tool prompt teaches.
``tool_prompt`` renders the tools and the history, the format's structural tag enforces
``tool_choice`` and ``tool_call_parser`` reads the calls back:

- ``auto``: free text, but once the format's trigger appears, the call must name an
  offered tool and its arguments must match that tool's schema;
- ``required``: the whole output is one or more calls of offered tools;
- a named tool: the whole output is exactly one call of that tool;
- ``none``: tools are not rendered and no call is parsed.

``parallel_tool_calls=False`` (OpenAI's option, an argument of the engine's ``stream``)
allows at most one call per turn in every mode. A thinking template keeps its reasoning:
the constraint starts after it (``reasoning_constraint``).
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
from .reasoning_constraint import constrain_after_reasoning
from .tool_call_parser import ToolCallParser
from .tool_formats import ToolCallFormat
from .tool_prompt import render_tool_prompt, request_format
from .tools import Tool, ToolChoice, normalize_tool_choice, normalize_tools


@dataclass
class ToolPlan:
    """What a tool-enabled request becomes: a prompt, constrained params and a parser factory."""

    prompt: str
    params: SamplingParams
    parser_factory: Callable[[], TextParser] | None
    format: ToolCallFormat | None = None


def tool_call_constraint(
    fmt: ToolCallFormat, tools: list[Tool], choice: ToolChoice, single: bool = False
) -> StructuredOutputsParams | None:
    """The structural tag enforcing ``choice`` in ``fmt``; None for ``none``. ``single``: at
    most one call, generation ends after it (``parallel_tool_calls=False``)."""
    if choice.mode == "none":
        return None
    tag = {"type": "structural_tag", "format": fmt.constraint(tools, choice, single)}
    return StructuredOutputsParams(structural_tag=tag)


def markers_are_special(tokenizer: Tokenizer, fmt: ToolCallFormat) -> bool:
    """Whether a marker of ``fmt`` is a special token (Mistral's ``[TOOL_CALLS]``), which
    decoding would drop unless special tokens are kept."""
    for marker in fmt.markers:
        ids = tokenizer.encode(marker, add_special_tokens=False)
        if tokenizer.decode(ids, skip_special_tokens=True) != marker:
            return True
    return False


def calls_or_answer(
    fmt: ToolCallFormat, tools: list[Tool], schema: Any, single: bool
) -> StructuredOutputsParams:
    """One or more calls of offered tools, or else an answer that follows ``schema``
    (OpenAI's ``response_format`` with tools, which LangChain agents' ProviderStrategy uses)."""
    calls = fmt.constraint(tools, ToolChoice("required"), single)
    answer = {"type": "json_schema", "json_schema": _schema(schema)}
    tag = {"type": "structural_tag", "format": {"type": "or", "elements": [calls, answer]}}
    return StructuredOutputsParams(structural_tag=tag)


def _schema(schema: Any) -> Any:
    return json.loads(schema) if isinstance(schema, str) else schema


def plan_tool_request(
    tokenizer: Tokenizer,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    tool_choice: Any,
    params: SamplingParams,
    chat_template_kwargs: dict[str, Any] | None,
    *,
    parallel_tool_calls: bool = True,
    tool_call_format: str | None = None,
) -> ToolPlan:
    """Validate tools and tool_choice, render the prompt, add the constraint and parser.

    ``parallel_tool_calls=False`` allows at most one call (generation ends after it);
    ``tool_call_format`` names the call syntax instead of the template's.

    Raises ``InvalidRequestError`` before anything is queued.
    """
    offered = normalize_tools(tools)
    choice = normalize_tool_choice(tool_choice, offered)
    template = chat_template_text(tokenizer, chat_template_kwargs)
    fmt = request_format(template, tool_call_format)
    prompt = render_tool_prompt(tokenizer, messages, offered, choice, chat_template_kwargs, fmt=fmt)
    constraint = tool_call_constraint(fmt, offered, choice, single=not parallel_tool_calls)
    tool_parser: Callable[[], TextParser] | None = None
    answer = params.structured_outputs
    if constraint is not None and choice.mode == "auto" and answer is not None and answer.json:
        # An answer format with tools: calls, or the answer in that format.
        constraint = calls_or_answer(fmt, offered, answer.json, not parallel_tool_calls)
        params = params.clone(structured_outputs=None)
    if constraint is not None:
        if params.structured_outputs is not None:
            raise InvalidRequestError(
                "structured_outputs cannot be combined with tools (tool_choice "
                f"{choice.mode!r} constrains the output itself); use tool_choice='none'"
            )
        params = constrain_after_reasoning(
            params.clone(structured_outputs=constraint), template, prompt
        )
        if params.skip_special_tokens and markers_are_special(tokenizer, fmt):
            params = params.clone(skip_special_tokens=False)
        schemas = {
            t.name: t.parameters for t in offered if choice.mode != "named" or t.name == choice.name
        }
        tool_parser = lambda: ToolCallParser(fmt=fmt, schemas=schemas)  # noqa: E731
    parser_factory = reasoning_parser_factory(tokenizer, prompt, chat_template_kwargs, tool_parser)
    return ToolPlan(prompt=prompt, params=params, parser_factory=parser_factory, format=fmt)


__all__ = [
    "ToolPlan",
    "calls_or_answer",
    "markers_are_special",
    "plan_tool_request",
    "tool_call_constraint",
]
