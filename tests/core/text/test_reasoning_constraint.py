"""A thinking model keeps its reasoning under a JSON schema or a forced tool call: the
constraint starts after the ``</think>`` (it used to apply from the first token).

The default model's template has no thinking section; the tests render with the thinking
templates of ``test_reasoning`` (R1 style: the prompt opens ``<think>``; Qwen3 style: the
model may open it, ``enable_thinking=False`` closes it in the prompt).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest

from furiosa_integrations.core.text.reasoning_constraint import constrain_after_reasoning
from furiosa_integrations.core.text.tool_calling import plan_tool_request
from furiosa_integrations.engine import (
    AsyncEngine,
    InvalidRequestError,
    SamplingParams,
    StructuredOutputsParams,
)
from tests.core.text.format_templates import SCHEMAS, WEATHER
from tests.core.text.test_reasoning import MAY_THINK, OPENS_THINK
from tests.engine_checks import wait_idle

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
ASK = [{"role": "user", "content": "Ada is 36 years old. Extract her name and age."}]
ANSWER = '{"name": "Ada", "age": 36}'


def _schema_params(max_tokens: int = 96) -> SamplingParams:
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=0.0,
        structured_outputs=StructuredOutputsParams(json=PERSON),
    )


def _constrained(engine: AsyncEngine, template: str, **kwargs: Any) -> SamplingParams:
    """The params the engine runs a schema request with under ``template``."""
    prompt = engine.render_chat(ASK, chat_template_kwargs={"chat_template": template, **kwargs})
    return constrain_after_reasoning(_schema_params(), template, prompt)


def _accepts(engine: AsyncEngine, params: SamplingParams, text: str) -> bool:
    matcher = engine.native.constraint_factory(params).matcher  # type: ignore[attr-defined]
    return bool(matcher.accept_string(text)) and bool(matcher.is_completed())


def test_the_schema_applies_after_the_reasoning(chat_engine: AsyncEngine) -> None:
    # R1 style: the output starts inside the reasoning and must close it before the JSON.
    opened = _constrained(chat_engine, OPENS_THINK)
    assert opened.structured_outputs is not None
    assert opened.structured_outputs.kind() == "structural_tag"
    assert _accepts(chat_engine, opened, "Her name is Ada, 36.\n</think>\n\n" + ANSWER)
    assert not _accepts(chat_engine, opened, ANSWER)  # still thinking: not complete
    assert not _accepts(chat_engine, opened, "Ada.</think>\n\n" + '{"name": "Ada"}')
    # Qwen3 style: a thinking section is optional.
    may = _constrained(chat_engine, MAY_THINK)
    assert _accepts(chat_engine, may, "<think>Ada, 36.</think>\n\n" + ANSWER)
    assert _accepts(chat_engine, may, ANSWER)
    assert not _accepts(chat_engine, may, "Sure: " + ANSWER)
    # Thinking switched off (the prompt closed the section): the schema alone, as given.
    closed = _constrained(chat_engine, MAY_THINK, enable_thinking=False)
    assert closed.structured_outputs is not None and closed.structured_outputs.kind() == "json"
    # No thinking section in the template: unchanged.
    plain = chat_engine.render_chat(ASK)
    unchanged = constrain_after_reasoning(
        _schema_params(), str(chat_engine.tokenizer.chat_template), plain
    )
    assert unchanged.structured_outputs.kind() == "json"  # type: ignore[union-attr]
    # A constraint that writes </think> itself steers the reasoning too: left as it is.
    steering = SamplingParams(
        structured_outputs=StructuredOutputsParams(regex=r"[a-z ]+\n</think>\n\n[A-Z][a-z ]+")
    )
    assert constrain_after_reasoning(steering, OPENS_THINK, "<think>\n") is steering


def test_a_forced_call_applies_after_the_reasoning(chat_engine: AsyncEngine) -> None:
    kwargs = {"chat_template": OPENS_THINK}
    plan = plan_tool_request(
        chat_engine.tokenizer,
        ASK,
        [WEATHER],
        "required",
        _schema_params().clone(structured_outputs=None),
        kwargs,
    )
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    assert _accepts(chat_engine, plan.params, "I should check Oslo.</think>\n\n" + call)
    assert not _accepts(chat_engine, plan.params, "Oslo.</think>\n\nIt is sunny.")


async def test_a_thinking_model_keeps_its_reasoning(chat_engine: AsyncEngine) -> None:
    kwargs = {"chat_template": OPENS_THINK}
    schema, forced = await asyncio.gather(
        chat_engine.generate(messages=ASK, params=_schema_params(), chat_template_kwargs=kwargs),
        chat_engine.generate(
            messages=ASK,
            tools=[WEATHER],
            tool_choice="required",
            params=SamplingParams(max_tokens=96, temperature=0.0),
            chat_template_kwargs=kwargs,
        ),
    )
    answer = schema.outputs[0]
    assert answer.reasoning_text.strip(), answer
    assert "</think>" not in answer.text and "</think>" not in answer.reasoning_text
    jsonschema.validate(json.loads(answer.text), PERSON)
    call = forced.outputs[0]
    assert call.reasoning_text.strip(), call
    assert call.text == "" and [c.name for c in call.tool_calls] == ["get_weather"]
    jsonschema.validate(call.tool_calls[0].arguments, SCHEMAS["get_weather"])
    raw = chat_engine.tokenizer.decode(call.token_ids, skip_special_tokens=True)
    assert raw.lstrip().startswith(call.reasoning_text[:8]) and "</think>\n\n<tool_call>" in raw


async def test_the_budget_closes_the_reasoning_in_time(chat_engine: AsyncEngine) -> None:
    """However long the reasoning runs, the answer is complete within max_tokens: the
    planner writes the closing tag and the shortest answer the schema allows."""
    kwargs = {"chat_template": OPENS_THINK}
    results = await asyncio.gather(
        *(
            chat_engine.generate(
                messages=ASK, params=_schema_params(budget), chat_template_kwargs=kwargs
            )
            for budget in (16, 24, 40)
        )
    )
    for result in results:
        completion = result.outputs[0]
        jsonschema.validate(json.loads(completion.text), PERSON)
        assert completion.reasoning_text.strip()
    await wait_idle(chat_engine)
    # Less than the closing tag and the shortest answer take: refused before queuing.
    with pytest.raises(InvalidRequestError, match="max_tokens=4"):
        chat_engine.stream(messages=ASK, params=_schema_params(4), chat_template_kwargs=kwargs)
    stats = chat_engine.stats()
    assert stats.request_ids == stats.waiting == stats.running == 0
