"""Tool calling: prompt rendering, constraints from tool_choice, and call parsing.

(Filled in by the "Constrained decoding, structured output and tool calling" issue.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequestError
from .output_processor import TextParser
from .sampling import SamplingParams


@dataclass
class ToolPlan:
    """What a tool-enabled request becomes: a prompt, constrained params and a parser factory."""

    prompt: str
    params: SamplingParams
    parser_factory: Any  # () -> TextParser


def plan_tool_request(
    engine: Any,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    tool_choice: Any,
    params: SamplingParams,
    chat_template_kwargs: dict[str, Any] | None,
) -> ToolPlan:
    raise InvalidRequestError("Tool calling is not implemented yet")


def make_parser() -> TextParser | None:
    return None
