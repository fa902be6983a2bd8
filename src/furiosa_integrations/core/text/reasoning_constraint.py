"""A thinking model keeps its reasoning under a constraint: the constraint starts after it.

A JSON schema, a regex, a grammar or a forced tool call would otherwise apply from the
first token and leave a thinking model no room to think. For templates with a thinking
section the constraint becomes an xgrammar structural tag: free text up to ``</think>``,
then the blank line templates write, then the original constraint. Where the prompt
opened ``<think>`` (DeepSeek-R1 style) the output starts inside the reasoning; where the
model may open it itself (Qwen3 style) the section is optional; where the prompt closed
it already (thinking switched off) nothing changes. A constraint that writes
``</think>`` itself (a caller steering the reasoning too, or xgrammar's own model tags with
their reasoning part) is left as it is.

The furiosa and served backends pass the structural tag on to the server's xgrammar.
"""

from __future__ import annotations

import json
from typing import Any

from ..sampling_params import SamplingParams
from ..structured_outputs import StructuredOutputsParams
from .reasoning import THINK_CLOSE, THINK_OPEN, prompt_opens_thinking, template_has_thinking

# What the templates of thinking models write between the reasoning and the answer.
AFTER_THINKING = "\n\n"


def prompt_closed_thinking(prompt: str) -> bool:
    """True when the prompt ends with a closed (usually empty) thinking section."""
    return prompt.rstrip().endswith(THINK_CLOSE)


def constraint_format(structured: StructuredOutputsParams) -> dict[str, Any] | None:
    """The constraint as a structural-tag format; None for what has no such form (a
    structural tag in vLLM's legacy ``structures`` shape)."""
    kind = structured.kind()
    if kind == "json":
        return {"type": "json_schema", "json_schema": structured.json_schema()}
    if kind == "json_object":
        return {"type": "json_schema", "json_schema": {"type": "object"}}
    if kind == "regex":
        return {"type": "regex", "pattern": structured.regex}
    if kind == "grammar":
        return {"type": "grammar", "grammar": structured.grammar}
    if kind == "choice":
        options = [{"type": "const_string", "value": c} for c in structured.choice or []]
        return options[0] if len(options) == 1 else {"type": "or", "elements": options}
    tag = structured.structural_tag
    value = json.loads(tag) if isinstance(tag, str) else tag
    if isinstance(value, dict) and isinstance(value.get("format"), dict):
        return dict(value["format"])
    return None


def _writes_think_close(structured: StructuredOutputsParams) -> bool:
    value = getattr(structured, structured.kind())
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return THINK_CLOSE in text or THINK_CLOSE.replace("/", "\\/") in text


def reasoning_prefix(prompt: str) -> dict[str, Any] | None:
    """The free-text reasoning section the output may start with, given the prompt."""
    if prompt_opens_thinking(prompt):
        begin = ""  # the prompt opened it: the output starts inside
    elif prompt_closed_thinking(prompt):
        return None
    else:
        begin = THINK_OPEN
    section = {
        "type": "sequence",
        "elements": [
            {"type": "tag", "begin": begin, "content": {"type": "any_text"}, "end": THINK_CLOSE},
            {"type": "const_string", "value": AFTER_THINKING},
        ],
    }
    return section if begin == "" else {"type": "optional", "content": section}


def constrain_after_reasoning(params: SamplingParams, template: str, prompt: str) -> SamplingParams:
    """``params`` with its constraint moved after the reasoning section, when the template
    thinks; unchanged otherwise."""
    structured = params.structured_outputs
    if structured is None or not template_has_thinking(template):
        return params
    if _writes_think_close(structured):
        return params
    prefix = reasoning_prefix(prompt)
    answer = constraint_format(structured)
    if prefix is None or answer is None:
        return params
    tag = {"type": "structural_tag", "format": {"type": "sequence", "elements": [prefix, answer]}}
    return params.clone(structured_outputs=StructuredOutputsParams(structural_tag=tag))


__all__ = ["AFTER_THINKING", "constrain_after_reasoning", "constraint_format", "reasoning_prefix"]
