"""What LangChain 1.x reads off a chat model: its profile, its messages' provider and
standard content blocks, v3 event streams, and image content blocks in every form."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from furiosa_integrations.core.text.chat import image_parts
from furiosa_integrations.core.text.images import load_image
from furiosa_integrations.engine import (
    AsyncEngine,
    InvalidRequestError,
    ModelNotFoundError,
    StructuredOutputsParams,
    UnsupportedInputError,
)
from furiosa_integrations.langchain import FuriosaChat
from furiosa_integrations.langchain.messages import to_engine_messages
from tests.core.text.test_reasoning import OPENS_THINK


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


# ---- profile ----


def test_profile_is_read_off_the_engine(chat_engine: AsyncEngine) -> None:
    lazy = FuriosaChat()
    assert lazy.profile is None  # nothing loaded yet: building stays instant
    lazy.invoke("Hi", max_tokens=1)
    eager = FuriosaChat(validate_model_on_init=True)
    for chat in (lazy, eager, FuriosaChat(engine=chat_engine)):
        profile = chat.profile
        assert profile is not None
        assert profile["max_input_tokens"] == chat_engine.max_model_len
        assert profile["max_output_tokens"] == chat_engine.max_model_len - 1
        assert profile["image_inputs"] is False and profile["reasoning_output"] is False
        assert profile["tool_calling"] and profile["tool_choice"]
        assert profile["tool_call_streaming"] and profile["structured_output"]
    thinking = FuriosaChat(engine=chat_engine, chat_template_kwargs={"chat_template": OPENS_THINK})
    assert thinking.profile is not None and thinking.profile["reasoning_output"] is True
    mine = FuriosaChat(validate_model_on_init=True, profile={"max_input_tokens": 100})
    assert mine.profile == {"max_input_tokens": 100}  # a given profile is kept


def test_validate_model_on_init_fails_at_construction(tmp_path: Path) -> None:
    FuriosaChat(model=str(tmp_path / "missing"))  # lazy: nothing happens yet
    with pytest.raises(ModelNotFoundError):
        FuriosaChat(model=str(tmp_path / "missing"), validate_model_on_init=True)


def test_summarization_middleware_with_a_fractional_trigger(chat_engine: AsyncEngine) -> None:
    pytest.importorskip("langchain.agents.middleware")
    from langchain.agents import create_agent
    from langchain.agents.middleware import SummarizationMiddleware

    chat = FuriosaChat(temperature=0, max_tokens=16, validate_model_on_init=True)
    # 1% of the 8192-token context: the conversation below is over it.
    middleware = SummarizationMiddleware(
        model=chat, trigger=("fraction", 0.01), keep=("messages", 2)
    )
    agent = create_agent(model=chat, tools=[], middleware=[middleware])
    history: list[Any] = []
    for i in range(4):
        history += [
            HumanMessage(f"Tell me fact {i} about the Saltmarsh Lighthouse on Varrow Island."),
            AIMessage(f"Fact {i}: it was built in 1874 from grey granite, 31 meters tall."),
        ]
    history.append(HumanMessage("Who keeps it?"))
    assert chat.get_num_tokens_from_messages(history) > 0.01 * chat_engine.max_model_len
    messages = agent.invoke({"messages": history})["messages"]
    assert "summary" in str(messages[0].content).lower()
    assert len(messages) < len(history)


# ---- messages: provider, content blocks, v3 events ----


def test_messages_name_their_provider_and_blocks(chat_engine: AsyncEngine) -> None:
    chat = FuriosaChat(temperature=0, max_tokens=40)
    answer = chat.bind_tools([get_weather], tool_choice="get_weather").invoke("Weather in Oslo?")
    metadata = answer.response_metadata
    assert metadata["model_provider"] == "furiosa"
    assert metadata["model_name"] == chat_engine.model_name and metadata["finish_reason"]
    calls = [b for b in answer.content_blocks if b["type"] == "tool_call"]
    assert [c["name"] for c in calls] == ["get_weather"] and calls[0]["args"]["city"]
    chunks = list(chat.stream("Hi", max_tokens=3))
    assert all(c.response_metadata["model_provider"] == "furiosa" for c in chunks)


def _v3(chat: Any, prompt: str) -> tuple[list[dict[str, Any]], Any]:
    stream = chat.stream_events(prompt, version="v3")
    events = list(stream)
    return events, stream.output


def test_stream_events_v3_shows_reasoning_and_tool_calls(chat_engine: AsyncEngine) -> None:
    from langchain_core.language_models import BaseChatModel

    if "stream_events" not in vars(BaseChatModel):  # langchain-core before the v3 protocol
        pytest.skip("this langchain-core has no stream_events(version='v3')")
    # Reasoning: a thinking template, the 135M model steered into think-then-answer.
    thinking = FuriosaChat(
        temperature=0,
        max_tokens=40,
        chat_template_kwargs={"chat_template": OPENS_THINK},
        structured_outputs=StructuredOutputsParams(
            regex=r"[a-z ]{3,30}\n</think>\n\n[A-Z][a-z ]{2,30}"
        ),
    )
    events, message = _v3(thinking, "What is two plus two?")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "message-start" and kinds[-1] == "message-finish"
    assert events[0]["metadata"]["provider"] == "furiosa"
    deltas = [e["delta"]["type"] for e in events if e["event"] == "content-block-delta"]
    assert "reasoning-delta" in deltas and "text-delta" in deltas
    assert deltas.index("reasoning-delta") < deltas.index("text-delta")
    blocks = {b["type"]: b for b in message.content_blocks}
    assert blocks["reasoning"]["reasoning"].strip() and blocks["text"]["text"][:1].isupper()
    # Tool calls: a tool_call block with parsed arguments.
    chat = FuriosaChat(temperature=0, max_tokens=40).bind_tools(
        [get_weather], tool_choice="get_weather"
    )
    events, message = _v3(chat, "Weather in Oslo?")
    finished = [e["content"] for e in events if e["event"] == "content-block-finish"]
    assert [b["type"] for b in finished] == ["tool_call"]
    assert finished[0]["name"] == "get_weather" and "city" in finished[0]["args"]
    assert message.tool_calls[0]["name"] == "get_weather"


# ---- images: every form LangChain's standard blocks allow ----


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def _image_blocks(path: Path) -> list[dict[str, Any]]:
    data = base64.b64encode(_png()).decode()
    url = f"data:image/png;base64,{data}"
    return [
        {"type": "image", "base64": data, "mime_type": "image/png"},  # v1 standard
        {"type": "image", "url": url},
        {"type": "image", "url": str(path)},
        {"type": "image", "source_type": "base64", "data": data, "mime_type": "image/png"},  # v0
        {"type": "image", "source_type": "url", "url": url},
        {"type": "image_url", "image_url": {"url": url}},  # OpenAI chat completions
        {"type": "image_url", "image_url": url},
    ]


def test_every_image_block_form_loads(tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    path.write_bytes(_png())
    for block in _image_blocks(path):
        message = HumanMessage(content=[{"type": "text", "text": "What is this?"}, block])
        (part,) = image_parts(to_engine_messages([message]))
        image = load_image(part)
        assert image.size == (3, 2) and image.convert("RGB").getpixel((0, 0)) == (200, 10, 10)
    for unreadable in (
        {"type": "image", "file_id": "file-123"},
        {"type": "image", "source_type": "id", "id": "file-123"},
    ):
        with pytest.raises(InvalidRequestError, match="file ids"):
            load_image(unreadable)
    with pytest.raises(InvalidRequestError, match="not fetched"):
        load_image({"type": "image", "url": "https://example.com/a.png"})


def test_images_on_a_text_only_model_are_a_typed_error(
    chat_engine: AsyncEngine, tmp_path: Path
) -> None:
    path = tmp_path / "red.png"
    path.write_bytes(_png())
    chat = FuriosaChat(max_tokens=4)
    for block in _image_blocks(path):
        message = HumanMessage(content=[{"type": "text", "text": "What is this?"}, block])
        with pytest.raises(UnsupportedInputError, match="text-only"):
            chat.invoke([message])
    assert chat_engine.stats().request_ids == 0


# ---- agents reading the profile: structured_output picks the provider strategy ----


def test_agent_structured_response_through_response_format(chat_engine: AsyncEngine) -> None:
    pytest.importorskip("langchain.agents")
    from langchain.agents import create_agent
    from pydantic import BaseModel

    class Weather(BaseModel):
        city: str
        sky: str

    chat = FuriosaChat(temperature=0, max_tokens=48, validate_model_on_init=True)
    # The profile says structured_output, so the agent binds response_format (its
    # ProviderStrategy): with tools, a turn either calls them or answers in the format.
    agent = create_agent(model=chat, tools=[get_weather], response_format=Weather)
    result = agent.invoke(
        {"messages": [HumanMessage("What is the weather in Oslo?")]}, {"recursion_limit": 8}
    )
    assert isinstance(result["structured_response"], Weather)
    assert any(getattr(m, "tool_calls", None) for m in result["messages"])
    plain = create_agent(model=chat, tools=[], response_format=Weather)
    answer = plain.invoke({"messages": [HumanMessage("Oslo is sunny today.")]})
    assert isinstance(answer["structured_response"], Weather)
