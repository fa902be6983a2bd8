"""FuriosaChat with each family's tool-call format and with a thinking template: tool calls
in ``AIMessage.tool_calls``, reasoning as standard ``reasoning`` content blocks, the
``reasoning=`` and ``tool_call_format=`` options, and earlier reasoning fed back.

The default model's template has neither tools nor thinking; the test templates of
``tests/core/text`` are passed per request through ``chat_template_kwargs``.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import jsonschema
import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from pydantic import BaseModel, Field

from furiosa_integrations.engine import AsyncEngine, InvalidRequestError, StructuredOutputsParams
from furiosa_integrations.langchain import FuriosaChat
from furiosa_integrations.langchain.messages import to_engine_messages
from tests.core.text.format_templates import SCHEMAS, TEMPLATES, WEATHER, repeat_prompts
from tests.core.text.test_reasoning import MAY_THINK, OPENS_THINK
from tests.core.text.test_reasoning_switch import FEEDBACK

ASK: list[BaseMessage] = [HumanMessage("What is the weather in Rome?")]
# Steers the 135M model into a think-then-answer shape (the regex writes </think> itself).
THINK_THEN_ANSWER = StructuredOutputsParams(regex=r"[a-z ]{3,30}\n</think>\n\n[A-Z][a-z ]{2,30}")


@pytest.fixture
def chat(chat_engine: AsyncEngine) -> FuriosaChat:
    return FuriosaChat(temperature=0, max_tokens=64)


def _lc(messages: list[dict[str, Any]]) -> list[BaseMessage]:
    return [
        HumanMessage(m["content"]) if m["role"] == "user" else AIMessage(m["content"])
        for m in messages
    ]


def _kwargs(template: str) -> dict[str, Any]:
    return {"chat_template_kwargs": {"chat_template": template}}


# ---- tool calls in each family's format ----


async def test_forced_and_auto_calls_in_each_format_become_tool_calls(chat: FuriosaChat) -> None:
    forced = chat.bind_tools([WEATHER], tool_choice="any")
    auto = chat.bind_tools([WEATHER], tool_choice="auto")
    names = sorted(TEMPLATES)
    forced_results = await asyncio.gather(
        *(forced.ainvoke(ASK, **_kwargs(TEMPLATES[n])) for n in names)
    )
    for name, message in zip(names, forced_results, strict=True):
        assert [c["name"] for c in message.tool_calls] == ["get_weather"], (name, message)
        jsonschema.validate(message.tool_calls[0]["args"], SCHEMAS["get_weather"])
        assert message.content == "" and message.response_metadata["finish_reason"] in (
            "tool_calls",
            "length",
        )
    jobs = [(n, p) for n in names for p in repeat_prompts(n)]
    auto_results = await asyncio.gather(
        *(auto.ainvoke(_lc(p), max_tokens=48, **_kwargs(TEMPLATES[n])) for n, p in jobs)
    )
    called = set()
    for (name, _), message in zip(jobs, auto_results, strict=True):
        for call in message.tool_calls:
            assert call["name"] == "get_weather"
            jsonschema.validate(call["args"], SCHEMAS["get_weather"])
            called.add(name)
    assert called == set(names)


def test_streamed_calls_add_up_in_each_format(chat: FuriosaChat) -> None:
    bound = chat.bind_tools([WEATHER], tool_choice="get_weather")
    for name in ("llama3_json", "mistral", "qwen3_xml"):
        chunks = cast("list[AIMessageChunk]", list(bound.stream(ASK, **_kwargs(TEMPLATES[name]))))
        total = chunks[0]
        for chunk in chunks[1:]:
            total += chunk
        assert isinstance(total, AIMessageChunk)
        assert [c["name"] for c in total.tool_calls] == ["get_weather"], name
        assert not any(
            "TOOL_CALLS" in str(c.content) or "<function" in str(c.content) for c in chunks
        )


def test_a_history_with_tool_results_renders_through_the_template(
    chat: FuriosaChat, chat_engine: AsyncEngine
) -> None:
    history: list[BaseMessage] = [
        HumanMessage("What is the weather in Paris?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]),
        ToolMessage("18 C, sunny", tool_call_id="c1"),
    ]
    bound = chat.bind_tools([WEATHER])
    for name, template in TEMPLATES.items():
        message = bound.invoke(history, max_tokens=4, **_kwargs(template))
        rendered = chat_engine.render_chat(
            to_engine_messages(history),
            tools=[WEATHER],
            chat_template_kwargs={"chat_template": template},
        )
        assert "18 C, sunny" in rendered and "Paris" in rendered
        assert message.usage_metadata is not None
        assert message.usage_metadata["input_tokens"] == len(chat_engine.tokenize(rendered)), name


def test_tool_call_format_option(chat_engine: AsyncEngine) -> None:
    chat = FuriosaChat(temperature=0, max_tokens=64, tool_call_format="mistral")
    message = chat.bind_tools([WEATHER], tool_choice="any").invoke(ASK)
    assert [c["name"] for c in message.tool_calls] == ["get_weather"]
    assert all(len(c["id"] or "") == 9 for c in message.tool_calls)  # Mistral's ids
    per_call = chat.bind_tools([WEATHER], tool_choice="any").invoke(
        ASK, tool_call_format="qwen3_xml"
    )
    assert [c["name"] for c in per_call.tool_calls] == ["get_weather"]
    with pytest.raises(InvalidRequestError, match="tool_call_format 'toml'"):
        chat.invoke(ASK, tool_call_format="toml")


def test_a_template_that_renders_tools_is_not_forced_to_call(chat_engine: AsyncEngine) -> None:
    """force_tool_call_on_user_turn's default follows the template the request renders
    with: one that renders tools leaves the choice to the model."""
    chat = FuriosaChat()
    _, ours = chat._request(ASK, None, {"tools": [WEATHER]})
    _, theirs = chat._request(ASK, None, {"tools": [WEATHER], **_kwargs(TEMPLATES["hermes"])})
    assert (ours["tool_choice"], theirs["tool_choice"]) == ("required", None)


# ---- reasoning ----


def test_reasoning_comes_back_as_reasoning_blocks(chat: FuriosaChat) -> None:
    thinking = chat.bind(structured_outputs=THINK_THEN_ANSWER, **_kwargs(OPENS_THINK))
    message = thinking.invoke([HumanMessage("What is two plus two?")])
    reasoning = message.additional_kwargs["reasoning_content"]
    assert reasoning.strip() and "</think>" not in reasoning
    assert message.content and "</think>" not in message.content
    blocks = message.content_blocks
    assert blocks[0] == {"type": "reasoning", "reasoning": reasoning}
    assert blocks[1]["type"] == "text" and blocks[1]["text"] == message.content
    # Streamed: reasoning chunks first, then the answer; they add up to the same message.
    chunks = cast(
        "list[AIMessageChunk]", list(thinking.stream([HumanMessage("What is two plus two?")]))
    )
    first_text = next(i for i, c in enumerate(chunks) if c.content)
    assert any(c.additional_kwargs.get("reasoning_content") for c in chunks[:first_text])
    assert not any(c.additional_kwargs.get("reasoning_content") for c in chunks[first_text:])
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.content_blocks[0] == {"type": "reasoning", "reasoning": reasoning}
    # LangChain's v1 output: the standard blocks are the content itself.
    v1 = FuriosaChat(temperature=0, max_tokens=64, output_version="v1")
    v1_message = v1.invoke(
        [HumanMessage("What is two plus two?")],
        structured_outputs=THINK_THEN_ANSWER,
        **_kwargs(OPENS_THINK),
    )
    assert isinstance(v1_message.content, list)
    assert [b["type"] for b in v1_message.content] == ["reasoning", "text"]  # type: ignore[index]
    assert v1_message.content[0]["reasoning"] == reasoning  # type: ignore[index]


class Person(BaseModel):
    name: str = Field(max_length=20)
    age: int


def test_structured_output_keeps_the_reasoning(chat_engine: AsyncEngine) -> None:
    thinking = FuriosaChat(temperature=0, max_tokens=96, **_kwargs(OPENS_THINK))
    structured = thinking.with_structured_output(Person, include_raw=True)
    result = structured.invoke("Ada is 36 years old. Extract her name and age.")
    assert isinstance(result["parsed"], Person)
    assert result["raw"].content_blocks[0]["type"] == "reasoning"


def test_reasoning_option(chat_engine: AsyncEngine) -> None:
    off = FuriosaChat(temperature=0, max_tokens=8, reasoning=False, **_kwargs(MAY_THINK))
    message = off.invoke([HumanMessage("What is two plus two?")])
    assert "reasoning_content" not in message.additional_kwargs and message.content
    assert off.invoke([HumanMessage("Hi")], reasoning=True).content is not None  # per call
    with pytest.raises(InvalidRequestError, match="no reasoning section"):
        FuriosaChat(reasoning=True).invoke("hi")  # the default template does not think
    with pytest.raises(InvalidRequestError, match="no effort levels"):
        off.invoke("hi", reasoning="high")


def test_earlier_reasoning_is_fed_back(chat: FuriosaChat, chat_engine: AsyncEngine) -> None:
    history: list[BaseMessage] = [
        HumanMessage("What is two plus two?"),
        AIMessage(
            [
                {"type": "reasoning", "reasoning": "Two and two make four."},
                {"type": "text", "text": "4."},
            ]
        ),
        HumanMessage("And three plus three?"),
        AIMessage("6.", additional_kwargs={"reasoning_content": "Three and three: six."}),
        HumanMessage("And four plus four?"),
    ]
    engine_messages = to_engine_messages(history)
    assert engine_messages[1]["role"] == "assistant"
    assert engine_messages[1]["reasoning_content"] == "Two and two make four."
    assert engine_messages[3]["reasoning_content"] == "Three and three: six."
    rendered = chat_engine.render_chat(
        engine_messages, chat_template_kwargs={"chat_template": FEEDBACK}
    )
    assert "<think>\nTwo and two make four.\n</think>\n\n4." in rendered
    assert "<think>\nThree and three: six.\n</think>\n\n6." in rendered
    message = chat.invoke(history, max_tokens=2, **_kwargs(FEEDBACK))
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == len(chat_engine.tokenize(rendered))
