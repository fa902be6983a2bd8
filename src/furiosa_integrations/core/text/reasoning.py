"""Separate a thinking model's ``<think>...</think>`` section from its answer.

Only models whose chat template has a thinking section get this parser. Where the
rendered prompt already opens ``<think>`` (DeepSeek-R1 style), the output starts inside
the reasoning; otherwise a ``<think>`` at the very start of the output opens it
(Qwen3 style). Everything after ``</think>`` is the answer, which may go on to a tool
parser (``ChainedParser``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..output_processor import TextParser
from ..outputs import ToolCall
from ..tokenizer import Tokenizer
from .tool_call_parser import held_tag_prefix

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def chat_template_text(tokenizer: Tokenizer, chat_template_kwargs: dict[str, Any] | None) -> str:
    """The template a request renders with: its own override, else the tokenizer's."""
    template = (chat_template_kwargs or {}).get("chat_template") or getattr(
        tokenizer, "chat_template", None
    )
    if isinstance(template, dict):  # named templates ("default", "tool_use", ...)
        return "\n".join(str(t) for t in template.values())
    return str(template or "")


def template_has_thinking(template: str) -> bool:
    """Either tag will do: R1-style templates open ``<think>`` in the generation prompt,
    others only strip ``...</think>`` from earlier answers."""
    return THINK_OPEN in template or THINK_CLOSE in template


def prompt_opens_thinking(prompt: str) -> bool:
    """True when the prompt ends inside an open ``<think>`` (the model continues reasoning)."""
    return prompt.rfind(THINK_OPEN) > prompt.rfind(THINK_CLOSE)


class ReasoningParser:
    """A ``TextParser`` sending the thinking section to reasoning text, the rest to content."""

    def __init__(self, in_reasoning: bool = False) -> None:
        # start: maybe a <think> comes; reasoning: inside; after: skip blank lines; content.
        self._state = "reasoning" if in_reasoning else "start"
        self._buffer = ""
        self._reasoning_started = False

    def feed(self, text: str) -> tuple[str, str, list[ToolCall]]:
        self._buffer += text
        content: list[str] = []
        reasoning: list[str] = []
        while True:
            if self._state == "start":
                stripped = self._buffer.lstrip()
                if stripped.startswith(THINK_OPEN):
                    self._buffer = stripped[len(THINK_OPEN) :]
                    self._state = "reasoning"
                elif THINK_OPEN.startswith(stripped):  # blank, or a partial "<think"
                    break
                else:
                    self._state = "content"
            elif self._state == "reasoning":
                end = self._buffer.find(THINK_CLOSE)
                if end == -1:
                    ready = len(self._buffer) - held_tag_prefix(self._buffer, THINK_CLOSE)
                    reasoning.append(self._reasoning(self._buffer[:ready]))
                    self._buffer = self._buffer[ready:]
                    break
                reasoning.append(self._reasoning(self._buffer[:end]))
                self._buffer = self._buffer[end + len(THINK_CLOSE) :]
                self._state = "after"
            elif self._state == "after":
                self._buffer = self._buffer.lstrip()
                if not self._buffer:
                    break
                self._state = "content"
            else:
                content.append(self._buffer)
                self._buffer = ""
                break
        return "".join(content), "".join(reasoning), []

    def finish(self) -> tuple[str, str, list[ToolCall]]:
        rest, self._buffer = self._buffer, ""
        if self._state == "reasoning":  # cut off while thinking
            return "", self._reasoning(rest), []
        if self._state == "after":
            rest = rest.lstrip()
        return rest, "", []

    @property
    def done(self) -> bool:
        return False

    def _reasoning(self, text: str) -> str:
        if not self._reasoning_started:
            text = text.lstrip()
            self._reasoning_started = bool(text)
        return text


class ChainedParser:
    """Reasoning first; the answer text then goes through ``answer_parser`` (tool calls)."""

    def __init__(self, reasoning: TextParser, answer_parser: TextParser) -> None:
        self.reasoning = reasoning
        self.answer_parser = answer_parser

    def feed(self, text: str) -> tuple[str, str, list[ToolCall]]:
        content, thought, _ = self.reasoning.feed(text)
        content, more_thought, calls = self.answer_parser.feed(content)
        return content, thought + more_thought, calls

    @property
    def done(self) -> bool:
        return self.answer_parser.done

    def finish(self) -> tuple[str, str, list[ToolCall]]:
        content, thought, _ = self.reasoning.finish()
        content, more_thought, calls = self.answer_parser.feed(content)
        last_content, last_thought, last_calls = self.answer_parser.finish()
        return content + last_content, thought + more_thought + last_thought, calls + last_calls


def reasoning_parser_factory(
    tokenizer: Tokenizer,
    prompt: str,
    chat_template_kwargs: dict[str, Any] | None = None,
    answer_parser_factory: Callable[[], TextParser] | None = None,
) -> Callable[[], TextParser] | None:
    """Parsers for a chat request: reasoning when the template thinks, chained with tools.

    Returns ``answer_parser_factory`` unchanged when the template has no thinking section.
    """
    if not template_has_thinking(chat_template_text(tokenizer, chat_template_kwargs)):
        return answer_parser_factory
    in_reasoning = prompt_opens_thinking(prompt)

    def make() -> TextParser:
        reasoning = ReasoningParser(in_reasoning)
        if answer_parser_factory is None:
            return reasoning
        return ChainedParser(reasoning, answer_parser_factory())

    return make


__all__ = [
    "ChainedParser",
    "ReasoningParser",
    "chat_template_text",
    "prompt_opens_thinking",
    "reasoning_parser_factory",
    "template_has_thinking",
]
