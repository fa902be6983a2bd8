"""Token counts with the model's own tokenizer and chat template (not GPT-2's).

``get_num_tokens_from_messages`` renders exactly what a call sends, so it equals that
call's ``usage_metadata["input_tokens"]`` (the engine's ``usage.prompt_tokens``): 20
conversations, half of them with tools (which add our tool prompt, and on a user turn
the forced call's wording), some with tool histories and system prompts.
"""

from __future__ import annotations

import warnings
from typing import cast

import pytest
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    get_buffer_string,
)
from langchain_core.tools import tool

from furiosa_integrations.engine import AsyncEngine
from furiosa_integrations.langchain import FuriosaChat, FuriosaLLM


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _conversations() -> list[list[BaseMessage]]:
    questions = [
        "Hi!",
        "What is the capital of France?",
        "Explain photosynthesis in one sentence, please.",
        "Ünïcödé and emoji 🚢 count too.",
        "Write a haiku about ferries.",
    ]
    out: list[list[BaseMessage]] = []
    for i, question in enumerate(questions):
        out.append([HumanMessage(question)])
        out.append([SystemMessage("Be brief."), HumanMessage(question)])
        history: list[BaseMessage] = [
            HumanMessage("What is 2 + 3?"),
            AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": f"c{i}"}]),
            ToolMessage("5", tool_call_id=f"c{i}"),
            AIMessage("2 + 3 is 5."),
            HumanMessage(question),
        ]
        out.append(history)
        out.append(history[:3])  # ends with a tool result: the model answers freely
    return out


CONVERSATIONS = _conversations()
assert len(CONVERSATIONS) == 20


@pytest.mark.parametrize("with_tools", [False, True], ids=["no-tools", "tools"])
def test_counts_equal_the_engines_prompt_tokens(chat_engine: AsyncEngine, with_tools: bool) -> None:
    # A forced call needs room for its shortest complete form; plain answers one token.
    chat = FuriosaChat(temperature=0, max_tokens=32 if with_tools else 1)
    tools = [get_weather, add] if with_tools else None
    runnable = chat.bind_tools(tools) if tools else chat
    conversations = CONVERSATIONS[:10] if with_tools else CONVERSATIONS[10:]
    # submitted together: the engine batches them
    answers = runnable.batch(cast("list[LanguageModelInput]", conversations))
    for messages, answer in zip(conversations, answers, strict=True):
        counted = chat.get_num_tokens_from_messages(messages, tools=tools)
        usage = answer.usage_metadata
        assert usage is not None and counted == usage["input_tokens"], messages


def test_tools_and_template_are_counted(chat_engine: AsyncEngine) -> None:
    chat = FuriosaChat()
    messages: list[BaseMessage] = [HumanMessage("Weather in Oslo?")]
    plain = chat.get_num_tokens_from_messages(messages)
    assert chat.get_num_tokens_from_messages(messages, tools=[get_weather]) > plain + 20
    # The template's own tokens are there too: more than the text alone.
    assert plain > chat.get_num_tokens("Weather in Oslo?") + 3
    assert chat.get_token_ids("Weather in Oslo?") == chat_engine.tokenize("Weather in Oslo?")


def test_custom_token_counter_still_wins(chat_engine: AsyncEngine) -> None:
    chat = FuriosaChat(custom_get_token_ids=lambda text: [0] * len(text))
    assert chat.get_num_tokens("abc") == 3


def test_completion_model_counts_the_prompt_it_sends(chat_engine: AsyncEngine) -> None:
    llm = FuriosaLLM(temperature=0, max_tokens=1)
    for prompt in ("The capital of France is", "Ünïcödé 🚢"):
        usage = llm.generate([prompt]).llm_output["token_usage"]  # type: ignore[index]
        assert llm.get_num_tokens(prompt) == usage["prompt_tokens"]
    messages: list[BaseMessage] = [SystemMessage("Be brief."), HumanMessage("Hi")]
    usage = llm.generate([get_buffer_string(messages)]).llm_output["token_usage"]  # type: ignore[index]
    assert llm.get_num_tokens_from_messages(messages) == usage["prompt_tokens"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        llm.get_num_tokens_from_messages(messages, tools=[add])
    assert any("no tools" in str(w.message) for w in caught)
