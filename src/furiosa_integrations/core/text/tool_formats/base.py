"""What a tool-call format is: one model family's call syntax, in one object.

A ``ToolCallFormat`` says how calls look in a model's output (the triggers that open a
block of calls, where the block ends, how it reads back into calls), how they are
constrained (xgrammar structural tags, passed on unchanged by the furiosa and served
backends) and how they are written when a prompt of ours describes the tools or writes an
earlier turn's calls as text. The shared streaming parser (``tool_call_parser``) and the
planner (``tool_calling``) work on any format; each family is one module beside this one,
listed in ``registry``.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ...outputs import ToolCall
from ..tools import Tool, ToolChoice

# The schemas of the offered tools, by name (a parser types XML-style values with them).
Schemas = Mapping[str, dict[str, Any]]


@dataclass(frozen=True)
class Trigger:
    """Text that opens a block of calls. ``kept``: it is the start of the block itself
    (Llama's bare ``{"name"``), not a marker to drop (``<tool_call>``)."""

    text: str
    kept: bool = False


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def json_call(value: Any, names: Schemas | None) -> ToolCall | None:
    """``{"name": ..., "arguments" | "parameters": {...}}`` as a call, or None when it is
    not one (or names a tool that was not offered). Arguments given as a JSON string (some
    models write them so) are read too."""
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return None
    if not isinstance(name, str) or not isinstance(arguments, dict):
        return None
    if names is not None and name not in names:
        return None
    return ToolCall(id="", name=name, arguments=arguments)


def json_value_end(text: str, start: int = 0) -> int | None:
    """Where the JSON value starting at ``text[start:]`` (after blanks) ends, or None when
    it is not complete (or not JSON) yet."""
    decoder = json.JSONDecoder()
    offset = len(text) - len(text[start:].lstrip()) if start < len(text) else len(text)
    try:
        _, end = decoder.raw_decode(text, offset)
    except json.JSONDecodeError:
        return None
    return end


class ToolCallFormat(ABC):
    """One family's tool-call syntax. Subclasses set the class attributes and the three
    parsing/constraint hooks; the rest has defaults that fit most families."""

    name: ClassVar[str]
    """The name vLLM and furiosa-llm give the parser (``--tool-call-parser``)."""

    triggers: ClassVar[tuple[Trigger, ...]]
    """What opens a block of calls in the output."""

    separator: str = "\n"
    """Between two calls of one turn, as the constraint writes them (a variant may set
    its own)."""

    between_calls: ClassVar[str] = " \n"
    """Characters dropped after a call (the separator, blank lines)."""

    how_to_call: ClassVar[str]
    """The sentence of our tool prompt that says how to write a call."""

    # ---- detection ----

    @classmethod
    @abstractmethod
    def matches(cls, template: str) -> bool:
        """Whether a chat template that renders tools writes calls in this format."""

    @classmethod
    def for_template(cls, template: str) -> ToolCallFormat:
        """The format as ``template`` spells it (a variant, whitespace); the class' own
        default when the template says nothing."""
        return cls()

    # ---- the output ----

    @abstractmethod
    def block_end(self, body: str) -> int | None:
        """Where the block of calls that starts ``body`` (the text after its trigger, or
        from a kept trigger) ends, or None while it is not complete."""

    @abstractmethod
    def parse_block(self, block: str, names: Schemas | None) -> list[ToolCall] | None:
        """The calls of one complete block (as ``block_end`` delimited it), or None when it
        is not well formed or calls a tool that is not in ``names``."""

    def new_call_id(self) -> str:
        return new_tool_call_id()

    # ---- the constraint ----

    @abstractmethod
    def call_tag(self, tool: Tool) -> dict[str, Any]:
        """A structural tag matching one call of ``tool``, its arguments per its schema."""

    @property
    def constraint_trigger(self) -> str:
        """The text that starts every ``call_tag`` (``auto`` constrains from it on)."""
        return self.triggers[0].text

    def constraint(self, tools: Sequence[Tool], choice: ToolChoice, single: bool) -> dict[str, Any]:
        """The structural-tag ``format`` enforcing ``choice`` (not ``none``). ``auto``: free
        text, a call once the trigger appears; ``required``: only one or more calls; a named
        tool: exactly one call of it. ``single``: at most one call."""
        if choice.mode == "auto":
            fmt: dict[str, Any] = {
                "type": "triggered_tags",
                "triggers": [self.constraint_trigger],
                "tags": [self.call_tag(t) for t in tools],
            }
            if single:
                fmt["stop_after_first"] = True
            return fmt
        chosen = [t for t in tools if choice.mode == "required" or t.name == choice.name]
        return {
            "type": "tags_with_separator",
            "tags": [self.call_tag(t) for t in chosen],
            "separator": self.separator,
            "at_least_one": True,
            # A named tool is called once (as OpenAI does); required allows several calls.
            "stop_after_first": choice.mode == "named" or single,
        }

    # ---- writing calls ----

    @abstractmethod
    def render_calls(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> str:
        """One assistant turn's calls, as the model writes them."""

    def history_for_template(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A history in transformers' shape adjusted to what the family's template demands
        (Mistral's 9-character call ids); unchanged by default."""
        return messages

    @property
    def markers(self) -> tuple[str, ...]:
        """Marker texts of the syntax; where the tokenizer has them as special tokens, the
        output must keep special tokens for the parser to see them."""
        return tuple(t.text for t in self.triggers if not t.kept)


__all__ = [
    "Schemas",
    "ToolCallFormat",
    "Trigger",
    "json_call",
    "json_value_end",
    "new_tool_call_id",
]
