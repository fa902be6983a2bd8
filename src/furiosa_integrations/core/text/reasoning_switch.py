"""``reasoning=``: thinking on or off, or an effort level, on each template's own switch.

Chat templates turn reasoning on and off, or set its effort, with variables of their own:
``enable_thinking`` (Qwen3, SmolLM3, EXAONE 4), ``thinking`` (DeepSeek V3.1, Granite),
``reasoning_effort`` (gpt-oss: low, medium, high). The switch is read from the template,
and the request's ``reasoning`` becomes that variable, so callers need not know each
template's spelling:

- ``None``: the template's default;
- ``True`` / ``False``: on or off (the toggle; a template that always thinks is on, one
  with no thinking section is off);
- an effort level (``"low"``, ``"medium"``, ``"high"``, or the levels the template
  compares against): ``reasoning_effort``, with the toggle on.

What a template cannot express is refused before queuing: reasoning asked of a template
with no thinking section, off for one that always thinks, an effort level for one
without levels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...errors import InvalidRequestError
from .reasoning import template_has_thinking

TOGGLES = ("enable_thinking", "thinking")
EFFORT = "reasoning_effort"
DEFAULT_LEVELS = ("low", "medium", "high")
_JINJA = re.compile(r"\{[{%](.*?)[%}]\}", re.S)
_STRING = re.compile(r"'[^']*'|\"[^\"]*\"")
_LEVEL = re.compile(rf"{EFFORT}\s*(?:==|!=)\s*['\"](\w+)['\"]")
_LEVEL_LIST = re.compile(rf"{EFFORT}\s+(?:not\s+)?in\s*[\[(]([^\])]*)[\])]")

Reasoning = bool | str | None


@dataclass(frozen=True)
class ReasoningSwitch:
    """What a template offers: ``toggle`` (the on/off variable), ``effort`` (the level
    variable) and its ``levels``; ``thinks``: it has a thinking section at all."""

    thinks: bool
    toggle: str | None = None
    effort: str | None = None
    levels: tuple[str, ...] = ()


def _uses_variable(template: str, name: str) -> bool:
    """Whether template code (not text, not a message attribute) reads ``name``."""
    pattern = re.compile(rf"(?<![\w.]){name}(?!\w)")
    return any(pattern.search(_STRING.sub("", code)) for code in _JINJA.findall(template))


def template_switch(template: str) -> ReasoningSwitch:
    """The reasoning switch ``template`` offers."""
    toggle = next((name for name in TOGGLES if _uses_variable(template, name)), None)
    if not _uses_variable(template, EFFORT):
        return ReasoningSwitch(template_has_thinking(template) or toggle is not None, toggle)
    levels = list(_LEVEL.findall(template))
    for listed in _LEVEL_LIST.findall(template):
        levels += [s.strip("'\"") for s in _STRING.findall(listed)]
    return ReasoningSwitch(True, toggle, EFFORT, tuple(dict.fromkeys(levels)) or DEFAULT_LEVELS)


def apply_reasoning(
    template: str, chat_template_kwargs: dict[str, Any] | None, reasoning: Reasoning
) -> dict[str, Any] | None:
    """``chat_template_kwargs`` with ``reasoning`` set on the template's switch (it wins
    over the same variable given by hand); InvalidRequestError for what the template cannot
    express."""
    if reasoning is None:
        return chat_template_kwargs
    if not isinstance(reasoning, (bool, str)):
        raise InvalidRequestError(
            f"reasoning must be True, False or an effort level, got {reasoning!r}"
        )
    switch = template_switch(template)
    kwargs = dict(chat_template_kwargs or {})
    if reasoning is False:
        if switch.toggle is not None:
            kwargs[switch.toggle] = False
        elif switch.thinks:
            raise InvalidRequestError(
                "reasoning=False: this chat template always reasons (it has no "
                f"{' or '.join(TOGGLES)} switch)"
            )
        return kwargs
    if not switch.thinks:
        raise InvalidRequestError(
            f"reasoning={reasoning!r}: this model's chat template has no reasoning section"
        )
    if switch.toggle is not None:
        kwargs[switch.toggle] = True
    if reasoning is True:
        return kwargs
    if switch.effort is None:
        raise InvalidRequestError(
            f"reasoning={reasoning!r}: this chat template has no effort levels; use "
            "reasoning=True or False"
        )
    if reasoning not in switch.levels:
        raise InvalidRequestError(
            f"reasoning={reasoning!r} is not one of this chat template's effort levels "
            f"{list(switch.levels)}"
        )
    kwargs[switch.effort] = reasoning
    return kwargs


__all__ = ["Reasoning", "ReasoningSwitch", "apply_reasoning", "template_switch"]
