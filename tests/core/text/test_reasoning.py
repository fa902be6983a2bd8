"""Separating ``<think>...</think>`` reasoning from the answer.

The default model's template has no thinking section, so the engine tests render with
thinking templates of our own (``chat_template_kwargs={"chat_template": ...}``) and steer
the 135M model into a think-then-answer shape with a regex constraint.
"""

from __future__ import annotations

import re

import pytest

from furiosa_integrations.core.text.reasoning import (
    ChainedParser,
    ReasoningParser,
    prompt_opens_thinking,
    reasoning_parser_factory,
    template_has_thinking,
)
from furiosa_integrations.core.text.tool_call_parser import ToolCallParser
from furiosa_integrations.engine import (
    AsyncEngine,
    SamplingParams,
    StructuredOutputsParams,
    ToolCall,
)

# DeepSeek-R1 style: the generation prompt opens the thinking section itself.
OPENS_THINK = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)
# Qwen3 style: the model may start with <think>; history answers have it stripped.
MAY_THINK = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' %}{{ m.content.split('</think>')[-1] }}"
    "{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)
QUESTION = [{"role": "user", "content": "What is two plus two?"}]


def _feed(
    parser: ReasoningParser | ChainedParser, text: str, size: int
) -> tuple[str, str, list[ToolCall]]:
    content, reasoning = "", ""
    calls: list[ToolCall] = []
    for start in range(0, len(text), size):
        c, r, t = parser.feed(text[start : start + size])
        content, reasoning, calls = content + c, reasoning + r, calls + t
    c, r, t = parser.finish()
    return content + c, reasoning + r, calls + t


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 100])
def test_think_section_split_at_any_chunk_boundary(size: int) -> None:
    text = "<think>\nFirst, 2 + 2. </thin is not a tag.\n</think>\n\nThe answer is 4."
    content, reasoning, _ = _feed(ReasoningParser(), text, size)
    assert reasoning == "First, 2 + 2. </thin is not a tag.\n"
    assert content == "The answer is 4."


@pytest.mark.parametrize("size", [1, 3, 100])
def test_prompt_that_opened_think_starts_in_reasoning(size: int) -> None:
    content, reasoning, _ = _feed(ReasoningParser(in_reasoning=True), "hmm, 4.</think>4", size)
    assert (reasoning, content) == ("hmm, 4.", "4")


def test_no_think_section_is_all_content() -> None:
    assert _feed(ReasoningParser(), "  Just an answer <think> later stays.", 2)[:2] == (
        "  Just an answer <think> later stays.",
        "",
    )
    assert _feed(ReasoningParser(), "<thin", 1)[:2] == ("<thin", "")  # a short answer


def test_cut_off_while_thinking_is_reasoning() -> None:
    assert _feed(ReasoningParser(), "<think>still going", 3)[:2] == ("", "still going")


def test_reasoning_then_tool_calls() -> None:
    text = (
        "<think>I need the weather.</think>\n"
        'Checking.<tool_call>{"name": "w", "arguments": {"city": "Oslo"}}</tool_call>'
    )
    for size in (1, 5, 1000):
        parser = ChainedParser(ReasoningParser(), ToolCallParser({"w"}))
        content, reasoning, calls = _feed(parser, text, size)
        assert (content, reasoning) == ("Checking.", "I need the weather.")
        assert [(c.name, c.arguments) for c in calls] == [("w", {"city": "Oslo"})]


def test_thinking_is_detected_from_the_template(chat_engine: AsyncEngine) -> None:
    assert template_has_thinking(OPENS_THINK) and template_has_thinking(MAY_THINK)
    template = chat_engine.tokenizer.chat_template
    assert isinstance(template, str) and not template_has_thinking(template)
    assert reasoning_parser_factory(chat_engine.tokenizer, "any prompt") is None
    assert prompt_opens_thinking("<|im_start|>assistant\n<think>\n")
    assert not prompt_opens_thinking("<think>\n\n</think>\n\n")
    assert not prompt_opens_thinking("<|im_start|>assistant\n")


def _steered(regex: str) -> SamplingParams:
    return SamplingParams(
        max_tokens=48, temperature=0.0, structured_outputs=StructuredOutputsParams(regex=regex)
    )


async def test_engine_separates_reasoning_when_prompt_opens_think(chat_engine: AsyncEngine) -> None:
    params = _steered(r"[a-z ]{3,30}\n</think>\n\n[A-Z][a-z ]{2,30}")
    kwargs = {"chat_template": OPENS_THINK}
    result = await chat_engine.generate(
        messages=QUESTION, params=params, chat_template_kwargs=kwargs
    )
    completion = result.outputs[0]
    raw = chat_engine.tokenizer.decode(completion.token_ids, skip_special_tokens=True)
    thought, answer = re.fullmatch(r"(.*)\n</think>\n\n(.*)", raw, re.S).groups()  # type: ignore[union-attr]
    assert completion.reasoning_text == (thought + "\n").lstrip()  # leading blanks dropped
    assert completion.text == answer
    # Streamed: the same split, reasoning before any answer text.
    chunks = [
        c
        async for c in chat_engine.stream(
            messages=QUESTION, params=params, chat_template_kwargs=kwargs
        )
    ]
    assert "".join(c.reasoning_text for c in chunks) == completion.reasoning_text
    assert "".join(c.text for c in chunks) == completion.text
    first_answer = next(i for i, c in enumerate(chunks) if c.text)
    assert all(not c.reasoning_text for c in chunks[first_answer:])
    assert sum(1 for c in chunks if c.reasoning_text) > 1  # reasoning streamed too


async def test_engine_separates_a_think_section_the_model_opens(chat_engine: AsyncEngine) -> None:
    kwargs = {"chat_template": MAY_THINK}
    thinking = await chat_engine.generate(
        messages=QUESTION,
        params=_steered(r"<think>[a-z ]{3,30}</think>[A-Z][a-z ]{2,30}"),
        chat_template_kwargs=kwargs,
    )
    assert thinking.outputs[0].reasoning_text.strip()
    assert "<think>" not in thinking.text and "</think>" not in thinking.text
    assert thinking.text[:1].isupper()
    # Thinking turned off by the template: the answer is all content.
    plain = await chat_engine.generate(
        messages=QUESTION,
        params=SamplingParams(max_tokens=12, temperature=0.0),
        chat_template_kwargs={**kwargs, "enable_thinking": False},
    )
    assert plain.outputs[0].reasoning_text == ""
    assert plain.text


async def test_default_template_leaves_think_tags_in_the_text(chat_engine: AsyncEngine) -> None:
    result = await chat_engine.generate(
        messages=QUESTION, params=_steered(r"<think>[a-z]{2,8}</think>[a-z]{2,8}")
    )
    assert result.text.startswith("<think>") and "</think>" in result.text
    assert result.outputs[0].reasoning_text == ""
