"""FuriosaLLM with each family's tool-call format and with a thinking template: tool
selections, ThinkingBlock and ``thinking_delta`` while streaming, the ``reasoning=`` and
``tool_call_format=`` options, and earlier reasoning fed back.

The default model's template has neither tools nor thinking; the test templates of
``tests/core/text`` are passed per request through ``chat_template_kwargs``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import jsonschema
import pytest
from llama_index.core.base.llms.types import TextBlock, ThinkingBlock
from llama_index.core.llms import ChatMessage
from llama_index.core.tools import FunctionTool

from furiosa_integrations.engine import AsyncEngine, InvalidRequestError, StructuredOutputsParams
from furiosa_integrations.llama_index import FuriosaLLM
from furiosa_integrations.llama_index.messages import to_engine_messages
from tests.core.text.format_templates import SCHEMAS, TEMPLATES, repeat_prompts
from tests.core.text.test_reasoning import MAY_THINK, OPENS_THINK
from tests.core.text.test_reasoning_switch import FEEDBACK


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny in {city}"


TOOL = FunctionTool.from_defaults(get_weather)
THINK_THEN_ANSWER = StructuredOutputsParams(regex=r"[a-z ]{3,30}\n</think>\n\n[A-Z][a-z ]{2,30}")
QUESTION = [ChatMessage(role="user", content="What is two plus two?")]


def _kwargs(template: str) -> dict[str, Any]:
    return {"chat_template_kwargs": {"chat_template": template}}


def _li(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    return [ChatMessage(role=m["role"], content=m["content"]) for m in messages]


async def test_forced_and_auto_calls_in_each_format_become_tool_selections(
    llm: FuriosaLLM,
) -> None:
    names = sorted(TEMPLATES)
    forced = await asyncio.gather(
        *(
            llm.achat_with_tools(
                [TOOL],
                user_msg="What is the weather in Rome?",
                tool_required=True,
                max_tokens=64,
                **_kwargs(TEMPLATES[n]),
            )
            for n in names
        )
    )
    for name, response in zip(names, forced, strict=True):
        selections = llm.get_tool_calls_from_response(response)
        assert [s.tool_name for s in selections] == ["get_weather"], name
        jsonschema.validate(selections[0].tool_kwargs, SCHEMAS["get_weather"])
    jobs = [(n, p) for n in names for p in repeat_prompts(n)]
    auto = await asyncio.gather(
        *(
            llm.achat_with_tools(
                [TOOL], chat_history=_li(p), tool_choice="auto", **_kwargs(TEMPLATES[n])
            )
            for n, p in jobs
        )
    )
    called = set()
    for (name, _), response in zip(jobs, auto, strict=True):
        for selection in llm.get_tool_calls_from_response(response, error_on_no_tool_call=False):
            assert selection.tool_name == "get_weather"
            jsonschema.validate(selection.tool_kwargs, SCHEMAS["get_weather"])
            called.add(name)
    assert called == set(names)


def test_tool_call_format_option(chat_engine: AsyncEngine) -> None:
    llm = FuriosaLLM(temperature=0, max_tokens=64, tool_call_format="llama3_json")
    response = llm.chat_with_tools([TOOL], user_msg="Weather in Oslo?", tool_required=True)
    assert [s.tool_name for s in llm.get_tool_calls_from_response(response)] == ["get_weather"]
    with pytest.raises(InvalidRequestError, match="tool_call_format 'yaml'"):
        llm.chat(QUESTION, tool_call_format="yaml")


def test_reasoning_comes_back_as_a_thinking_block(llm: FuriosaLLM) -> None:
    options = {"structured_outputs": THINK_THEN_ANSWER, **_kwargs(OPENS_THINK)}
    response = llm.chat(QUESTION, **options)
    thinking = [b for b in response.message.blocks if isinstance(b, ThinkingBlock)]
    text = [b for b in response.message.blocks if isinstance(b, TextBlock)]
    assert len(thinking) == 1 and thinking[0].content and "</think>" not in thinking[0].content
    assert text[0].text and "</think>" not in text[0].text
    assert response.message.blocks[0] is thinking[0]  # reasoning first
    # Streaming: thinking_delta while it reasons, then text deltas.
    steps = list(llm.stream_chat(QUESTION, **options))
    deltas = [s.additional_kwargs.get("thinking_delta", "") for s in steps]
    assert "".join(deltas) == thinking[0].content
    first_text = next(i for i, s in enumerate(steps) if s.delta)
    assert any(deltas[:first_text]) and not any(deltas[first_text:])
    assert "".join(s.delta or "" for s in steps) == text[0].text


def test_reasoning_option(chat_engine: AsyncEngine) -> None:
    off = FuriosaLLM(temperature=0, max_tokens=8, reasoning=False, **_kwargs(MAY_THINK))
    response = off.chat(QUESTION)
    assert not any(isinstance(b, ThinkingBlock) for b in response.message.blocks)
    with pytest.raises(InvalidRequestError, match="always reasons"):
        off.chat(QUESTION, **_kwargs(OPENS_THINK))  # no switch: it cannot be turned off
    with pytest.raises(InvalidRequestError, match="no reasoning section"):
        FuriosaLLM(reasoning="low").chat(QUESTION)


def test_earlier_reasoning_is_fed_back(llm: FuriosaLLM, chat_engine: AsyncEngine) -> None:
    history = [
        *QUESTION,
        ChatMessage(
            role="assistant",
            blocks=[ThinkingBlock(content="Two and two make four."), TextBlock(text="4.")],
        ),
        ChatMessage(role="user", content="And three plus three?"),
    ]
    engine_messages = to_engine_messages(history)
    assert engine_messages[1] == {
        "role": "assistant",
        "content": "4.",
        "reasoning_content": "Two and two make four.",
    }
    rendered = chat_engine.render_chat(
        engine_messages, chat_template_kwargs={"chat_template": FEEDBACK}
    )
    assert "<think>\nTwo and two make four.\n</think>\n\n4." in rendered
    response = llm.chat(history, max_tokens=2, **_kwargs(FEEDBACK))
    assert response.raw["usage"]["prompt_tokens"] == len(chat_engine.tokenize(rendered))
