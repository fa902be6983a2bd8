"""An answer format together with tools (OpenAI's ``response_format`` with ``tools``, what
LangChain agents bind): with ``tool_choice`` auto a turn is either tool calls or an
answer that follows the schema, never free text."""

from __future__ import annotations

import json

import jsonschema

from furiosa_integrations.engine import AsyncEngine, SamplingParams, StructuredOutputsParams

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}, "sky": {"type": "string"}},
    "required": ["city", "sky"],
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
CONVERSATIONS = [
    [{"role": "user", "content": "What is the weather in Oslo?"}],
    [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ],
    [{"role": "user", "content": "Oslo is sunny today. Report it."}],
]


async def test_auto_turn_is_calls_or_an_answer_in_the_format(chat_engine: AsyncEngine) -> None:
    params = SamplingParams(
        max_tokens=64, temperature=0, structured_outputs=StructuredOutputsParams(json=SCHEMA)
    )
    for messages in CONVERSATIONS:
        result = await chat_engine.generate(messages=messages, params=params, tools=TOOLS)
        completion = result.outputs[0]
        if completion.tool_calls:
            assert [c.name for c in completion.tool_calls] == ["get_weather"]
            assert not completion.text.strip()
        else:
            jsonschema.validate(json.loads(completion.text), SCHEMA)
