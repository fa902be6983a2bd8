"""FuriosaLLM's tool calling as LlamaIndex's FunctionCallingLLM: preparing the request,
tool_required / tool_choice / allow_parallel_tool_calls, ToolSelection, where the calls
are stored, streaming with tools, predict_and_call, and tool histories."""

from __future__ import annotations

import asyncio
import json

import pytest
from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.llms import ChatMessage, ChatResponse
from llama_index.core.tools import FunctionTool

from furiosa_integrations.llama_index import FuriosaLLM
from furiosa_integrations.llama_index.messages import to_engine_messages


def multiply(a: int, b: int) -> int:
    """Multiply two integers and return the product."""
    return a * b


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"Rainy in {city}"


TOOLS = [FunctionTool.from_defaults(multiply), FunctionTool.from_defaults(get_weather)]
ASK = "What is 12 times 7?"


def test_prepare_chat_with_tools_leaves_the_history_alone(llm: FuriosaLLM) -> None:
    history = [
        ChatMessage(role="user", content="hi"),
        ChatMessage(role="assistant", content="hello"),
    ]
    snapshot = [m.model_copy(deep=True) for m in history]
    kwargs = llm._prepare_chat_with_tools(
        TOOLS, user_msg=ASK, chat_history=history, tool_required=True
    )
    assert history == snapshot and len(history) == 2
    assert kwargs["messages"][:2] == history and kwargs["messages"][2].content == ASK
    assert [t["function"]["name"] for t in kwargs["tools"]] == ["multiply", "get_weather"]
    assert kwargs["tools"][0]["function"]["parameters"]["required"] == ["a", "b"]
    assert kwargs["tool_choice"] == "required" and kwargs["parallel_tool_calls"] is False
    default = llm._prepare_chat_with_tools(TOOLS, user_msg=ASK, allow_parallel_tool_calls=True)
    # No tool_choice: the default policy decides (a call on the user's turn for a model
    # whose template renders no tools, else auto).
    assert default["tool_choice"] is None and default["parallel_tool_calls"] is True
    named = llm._prepare_chat_with_tools(TOOLS, user_msg=ASK, tool_choice="get_weather")
    assert named["tool_choice"] == "get_weather"
    assert llm._prepare_chat_with_tools([], user_msg=ASK)["tools"] is None


def _check_multiply_call(llm: FuriosaLLM, response: ChatResponse) -> None:
    [selection] = llm.get_tool_calls_from_response(response)
    assert (selection.tool_name, selection.tool_kwargs) == ("multiply", {"a": 12, "b": 7})
    message = response.message
    [block] = [b for b in message.blocks if isinstance(b, ToolCallBlock)]
    assert block.tool_call_id == selection.tool_id and block.tool_kwargs == {"a": 12, "b": 7}
    [call] = message.additional_kwargs["tool_calls"]  # the OpenAI shape LlamaIndex tests for
    assert call["id"] == selection.tool_id and call["type"] == "function"
    assert call["function"]["name"] == "multiply"
    assert json.loads(call["function"]["arguments"]) == {"a": 12, "b": 7}
    assert "<tool_call>" not in (message.content or "")
    assert response.raw is not None and response.raw["finish_reason"] == "tool_calls"
    assert response.additional_kwargs["completion_tokens"] > 0


async def test_tool_required_in_every_sync_and_async_form(llm: FuriosaLLM) -> None:
    """chat/achat/stream/astream _with_tools, run at once (the engine batches them)."""

    def sync_stream() -> list[ChatResponse]:
        return list(llm.stream_chat_with_tools(TOOLS, user_msg=ASK, tool_required=True))

    async def async_stream() -> list[ChatResponse]:
        stream = await llm.astream_chat_with_tools(TOOLS, user_msg=ASK, tool_required=True)
        return [r async for r in stream]

    chat, achat, streamed, astreamed = await asyncio.gather(
        asyncio.to_thread(llm.chat_with_tools, TOOLS, user_msg=ASK, tool_required=True),
        llm.achat_with_tools(TOOLS, user_msg=ASK, tool_required=True),
        asyncio.to_thread(sync_stream),
        async_stream(),
    )
    for response in (chat, achat, streamed[-1], astreamed[-1]):
        _check_multiply_call(llm, response)
    for stream in (streamed, astreamed):
        # a call appears once it is complete, and stays on every later response
        with_calls = [bool(llm.get_tool_calls_from_response(r, False)) for r in stream]
        assert with_calls[-1] and with_calls == sorted(with_calls)
        assert "".join(r.delta or "" for r in stream) == stream[-1].message.content


def test_named_tool_choice_and_its_arguments(llm: FuriosaLLM) -> None:
    response = llm.chat_with_tools(
        TOOLS, user_msg="What's the weather like in Oslo?", tool_choice="get_weather"
    )
    [selection] = llm.get_tool_calls_from_response(response)
    assert (selection.tool_name, selection.tool_kwargs) == ("get_weather", {"city": "Oslo"})


def test_no_tool_call(llm: FuriosaLLM) -> None:
    response = llm.chat([ChatMessage(role="user", content="Say hi.")], max_tokens=4)
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="Expected at least one tool call"):
        llm.get_tool_calls_from_response(response)
    # tool_choice none: tools offered, no call is made
    none = llm.chat_with_tools(TOOLS, user_msg=ASK, tool_choice="none", max_tokens=8)
    assert llm.get_tool_calls_from_response(none, error_on_no_tool_call=False) == []


async def test_predict_and_call_sync_and_async(llm: FuriosaLLM) -> None:
    result, aresult = await asyncio.gather(
        asyncio.to_thread(llm.predict_and_call, [TOOLS[0]], user_msg=ASK, tool_required=True),
        llm.apredict_and_call([TOOLS[0]], user_msg=ASK, tool_required=True),
    )
    for r in (result, aresult):
        assert r.response == "84"
        assert r.sources[0].tool_name == "multiply" and r.sources[0].raw_output == 84


def test_tool_history_goes_back_to_the_model(llm: FuriosaLLM) -> None:
    history = [
        ChatMessage(
            role="system",
            content="You are a helpful assistant. When a tool response arrives, answer the "
            "user's question in one short sentence using it.",
        ),
        ChatMessage(role="user", content=ASK),
        ChatMessage(
            role="assistant",
            blocks=[
                ToolCallBlock(
                    tool_call_id="c1", tool_name="multiply", tool_kwargs={"a": 12, "b": 7}
                )
            ],
        ),
        ChatMessage(role="tool", content="84", additional_kwargs={"tool_call_id": "c1"}),
    ]
    engine_messages = to_engine_messages(history)
    assert engine_messages[2]["tool_calls"] == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "multiply", "arguments": {"a": 12, "b": 7}},
        }
    ]
    assert engine_messages[3] == {"role": "tool", "content": "84", "tool_call_id": "c1"}
    answer = llm.chat(history)
    assert "84" in (answer.message.content or "")
    assert len(history) == 4


def test_tool_calls_from_other_llms_in_additional_kwargs_convert() -> None:
    # A history written by another integration (OpenAI shape, JSON-string arguments).
    message = ChatMessage(
        role="assistant",
        content="",
        additional_kwargs={
            "tool_calls": [
                {
                    "id": "x",
                    "type": "function",
                    "function": {"name": "multiply", "arguments": '{"a": 1, "b": 2}'},
                }
            ]
        },
    )
    [converted] = to_engine_messages([message])
    assert converted["tool_calls"][0]["function"] == {
        "name": "multiply",
        "arguments": {"a": 1, "b": 2},
    }
