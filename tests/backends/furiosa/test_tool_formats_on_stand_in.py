"""Each family's tool-call format, and a constraint after the reasoning, on the furiosa
backend: the structural tag our engine builds reaches furiosa-llm's ``SamplingParams``
unchanged, furiosa-llm's own xgrammar compiles it, and the calls parse on our side.

Runs in .venv-furiosa (the native engine is the stand-in over our torch engine).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("furiosa_llm", reason="runs in .venv-furiosa (scripts/setup_furiosa_env.sh)")

import xgrammar

from furiosa_integrations.engine import AsyncEngine, SamplingParams, StructuredOutputsParams
from tests.core.text.format_templates import ADD, TEMPLATES, WEATHER
from tests.core.text.test_reasoning import OPENS_THINK

from .test_engine_on_stand_in import stand_in

ASK = [{"role": "user", "content": "What is the weather in Rome?"}]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
async def test_forced_calls_in_each_format(furiosa_chat: AsyncEngine, name: str) -> None:
    result = await furiosa_chat.generate(
        messages=ASK,
        tools=[WEATHER, ADD],
        tool_choice="get_weather",
        params=SamplingParams(max_tokens=64, temperature=0.0),
        chat_template_kwargs={"chat_template": TEMPLATES[name]},
    )
    assert [c.name for c in result.outputs[0].tool_calls] == ["get_weather"]
    _, native = stand_in(furiosa_chat).received[-1]
    tag = json.loads(native.structured_outputs.structural_tag)
    assert tag["type"] == "structural_tag"
    xgrammar.Grammar.from_structural_tag(json.dumps(tag))  # furiosa-llm's xgrammar takes it


async def test_schema_after_the_reasoning(furiosa_chat: AsyncEngine) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    result = await furiosa_chat.generate(
        messages=ASK,
        params=SamplingParams(
            max_tokens=48, temperature=0.0, structured_outputs=StructuredOutputsParams(json=schema)
        ),
        chat_template_kwargs={"chat_template": OPENS_THINK},
    )
    assert result.outputs[0].reasoning_text.strip()
    assert isinstance(json.loads(result.text)["a"], int)
    _, native = stand_in(furiosa_chat).received[-1]
    tag = native.structured_outputs.structural_tag
    assert "</think>" in tag and native.structured_outputs.json is None
    xgrammar.Grammar.from_structural_tag(tag)
