"""Agents on default settings: the default model calls the tool and answers in prose.

- LlamaIndex's ``FunctionAgent`` with ``FuriosaLLM()`` (no argument tuned) calls the
  tool for "What is 7 times 6?" and answers with its result;
- LangGraph's ``create_react_agent`` with ``FuriosaChat(temperature=0)`` does the same;
- after a tool result the answer never carries the ``<tool_response>`` wrapper the
  results are rendered in: twenty agent turns over the engine, with how often the model
  itself wrote it (the raw tokens) reported for the record.
"""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.tools import FunctionTool

from furiosa_integrations import FuriosaChat
from furiosa_integrations.engine import AsyncEngine, SamplingParams
from furiosa_integrations.llama_index import FuriosaLLM
from tests.engine_checks import wait_idle

pytestmark = pytest.mark.models

WRAPPER = "tool_response"


async def test_llama_index_function_agent_on_defaults(chat_engine: AsyncEngine) -> None:
    calls: list[tuple[int, int]] = []

    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        calls.append((a, b))
        return a * b

    agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=FuriosaLLM())
    handler = agent.run(user_msg="What is 7 times 6?")
    results = [ev async for ev in handler.stream_events() if isinstance(ev, ToolCallResult)]
    response = str(await handler)
    assert calls == [(7, 6)] and [r.tool_name for r in results] == ["multiply"]
    assert "42" in response and WRAPPER not in response
    await wait_idle(chat_engine)


def test_langgraph_agent_answers_in_prose(chat_engine: AsyncEngine) -> None:
    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return f"The weather in {city} is 18 degrees and cloudy."

    agent = create_react_agent(FuriosaChat(temperature=0), [get_weather])
    state = agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]})
    messages = state["messages"]
    assert isinstance(messages[1], AIMessage) and messages[1].tool_calls
    assert isinstance(messages[2], ToolMessage)
    answer = messages[-1]
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    assert answer.content and WRAPPER not in str(answer.content)


CITIES = ["Paris", "Oslo", "Lima", "Cairo", "Seoul", "Quito", "Dakar", "Perth", "Riga", "Bern"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def _turn(city: str, result: str) -> list[dict[str, object]]:
    call: dict[str, object] = {"id": "call_1", "type": "function"}
    call["function"] = {"name": "get_weather", "arguments": {"city": city}}
    return [
        {"role": "user", "content": f"What is the weather in {city}?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": result},
    ]


async def test_twenty_agent_turns_answer_without_the_wrapper(
    chat_engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    turns = [_turn(c, f"{c}: {t} degrees, {w}.") for c in CITIES for t, w in ((18, "cloudy"),)]
    turns += [_turn(c, f"It is sunny and {20 + i} C in {c}.") for i, c in enumerate(CITIES)]
    params = SamplingParams(temperature=0.0, max_tokens=48)
    results = await asyncio.gather(
        *(chat_engine.generate(messages=m, tools=TOOLS, params=params) for m in turns)
    )
    echoed = 0
    for result in results:
        raw = chat_engine.tokenizer.decode(result.outputs[0].token_ids)
        echoed += WRAPPER in raw
        assert result.text.strip() and WRAPPER not in result.text
    with capsys.disabled():
        print(f"\n{echoed}/{len(results)} raw answers echoed the wrapper (removed from the text)")
    await wait_idle(chat_engine)
