"""FuriosaChat beyond the standard suite: messages, options, streaming, callbacks, engine."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, cast

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
)
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.runnables import RunnableBinding
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from furiosa_integrations import FuriosaChat as TopLevelChat
from furiosa_integrations.core import GenerationChunk, ToolCall, Usage
from furiosa_integrations.engine import AsyncEngine, InvalidRequestError, SamplingParams
from furiosa_integrations.langchain import FuriosaChat, FuriosaLLM
from furiosa_integrations.langchain.chat_models import _tool_choice
from furiosa_integrations.langchain.chat_results import ChatAggregate, ChatChunkConverter
from furiosa_integrations.langchain.messages import to_engine_messages
from tests.engine_checks import wait_idle, wait_idle_sync

COUNT = "Count from 1 to 10, separated by commas."  # greedy: "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"


@pytest.fixture
def chat(chat_engine: AsyncEngine) -> FuriosaChat:
    return FuriosaChat(temperature=0, max_tokens=24)


# ---- messages (no model needed) ----


def test_messages_become_engine_dicts() -> None:
    messages = [
        SystemMessage("Be brief."),
        HumanMessage("What is 1 + 2?", name="ada"),
        AIMessage(
            [
                {"type": "text", "text": "Let me add."},
                {"type": "tool_use", "id": "c1", "name": "add", "input": {"a": 1, "b": 2}},
            ],
            tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}],
        ),
        ToolMessage([{"type": "text", "text": "3"}], tool_call_id="c1", name="add"),
        ToolMessage("missing b", tool_call_id="c2", status="error"),
        ChatMessage(role="developer", content="Answer in English."),
    ]
    assert to_engine_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 1 + 2?", "name": "ada"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Let me add."}],
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "add", "arguments": {"a": 1, "b": 2}},
                }
            ],
        },
        {
            "role": "tool",
            "content": [{"type": "text", "text": "3"}],
            "name": "add",
            "tool_call_id": "c1",
        },
        {"role": "tool", "content": "Error: missing b", "tool_call_id": "c2"},
        {"role": "system", "content": "Answer in English."},
    ]


def test_image_content_is_refused_on_a_text_only_model(chat: FuriosaChat) -> None:
    image = HumanMessage(
        [
            {"type": "text", "text": "Describe this."},
            {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"},
        ]
    )
    with pytest.raises(InvalidRequestError, match="text-only"):
        chat.invoke([image])
    url = HumanMessage([{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}])
    with pytest.raises(InvalidRequestError, match="text-only"):
        list(chat.stream([url]))


def test_every_engine_sampling_option_is_a_field() -> None:
    # output_kind is how the engine streams (the adapters always take deltas) and
    # extra_args is furiosa-llm's free-form pass-through; everything else is a documented
    # field.
    options = set(SamplingParams.__dataclass_fields__) - {"output_kind", "extra_args"}
    assert options <= set(FuriosaChat.model_fields)
    assert options <= set(FuriosaLLM.model_fields)
    for name in options:
        assert FuriosaChat.model_fields[name].description, name  # documented
    chat = FuriosaChat(max_tokens=9, top_k=5, stop=["x"])
    params = chat._sampling_params(None, {"top_k": 3, "seed": 7})
    assert (params.max_tokens, params.top_k, params.seed, params.stop) == (9, 3, 7, ["x"])
    assert params.temperature == SamplingParams().temperature  # unset: the engine's default


# ---- generation ----


def test_invoke_metadata_and_usage(chat: FuriosaChat, chat_engine: AsyncEngine) -> None:
    message = chat.invoke(COUNT)
    assert isinstance(message.content, str) and message.content.startswith("1, 2, 3, 4")
    assert message.response_metadata["model_name"] == chat_engine.model_name
    assert message.response_metadata["finish_reason"] in ("stop", "length")
    usage = message.usage_metadata
    assert usage is not None
    prompt_tokens = len(
        chat_engine.tokenize(chat_engine.render_chat([{"role": "user", "content": COUNT}]))
    )
    assert usage["input_tokens"] == prompt_tokens
    assert 0 < usage["output_tokens"] <= 24
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_stream_chunks_add_up_to_invoke(chat: FuriosaChat) -> None:
    chunks = list(chat.stream(COUNT))
    assert len(chunks) > 5
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    # Usage and finish metadata come once, on the last chunk.
    assert [c.usage_metadata is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].chunk_position == "last"
    assert "finish_reason" in chunks[-1].response_metadata
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    assert full.content == chat.invoke(COUNT).content


def test_stop_in_constructor_and_per_call(chat_engine: AsyncEngine) -> None:
    chat = FuriosaChat(temperature=0, max_tokens=30, stop=["5"])
    message = chat.invoke(COUNT)
    assert message.content == "1, 2, 3, 4, "
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["stop_reason"] == "5"
    assert chat.invoke(COUNT, stop=["3"]).content == "1, 2, "  # per call replaces
    assert "".join(str(c.content) for c in chat.stream(COUNT, stop=["4"])) == "1, 2, 3, "


def test_sampling_fields_are_overridable_per_call(chat: FuriosaChat) -> None:
    message = chat.invoke(COUNT, max_tokens=3)
    assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] == 3
    assert message.response_metadata["finish_reason"] == "length"
    bound = chat.bind(max_tokens=2)
    assert bound.invoke(COUNT).usage_metadata["output_tokens"] == 2  # type: ignore[index]
    logprobs = chat.invoke(COUNT, max_tokens=2, logprobs=2).response_metadata["logprobs"]
    assert len(logprobs["content"]) == 2
    assert len(logprobs["content"][0]["top_logprobs"]) == 2
    with pytest.raises(ValueError, match="Unknown option"):
        chat.invoke(COUNT, max_token=3)
    with pytest.raises(InvalidRequestError, match="temperature"):
        chat.invoke(COUNT, temperature=-1)


def test_n_completions(chat: FuriosaChat, chat_engine: AsyncEngine) -> None:
    result = chat.generate([[HumanMessage(COUNT)]], n=2, max_tokens=4)
    assert len(result.generations[0]) == 2
    with pytest.raises(ValueError, match="n=2"):
        list(chat.stream(COUNT, n=2))
    wait_idle_sync(chat_engine)


def test_tokens_reach_callbacks(chat: FuriosaChat) -> None:
    class Collect(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str | list[str | dict[str, Any]], **kwargs: Any) -> None:
            self.tokens.append(cast(str, token))  # chunk.text: always a string

    handler = Collect()
    streaming = FuriosaChat(temperature=0, max_tokens=12, streaming=True)
    message = streaming.invoke(COUNT, config={"callbacks": [handler]})
    assert len(handler.tokens) > 3
    assert "".join(handler.tokens) == message.content


def test_invoke_takes_tokens_as_they_come_only_for_a_callback(
    chat: FuriosaChat, chat_engine: AsyncEngine
) -> None:
    """invoke with no callback handler reads only the end (its steps are delivered with the
    last one); with a handler, on_llm_new_token hears each token while the answer is still
    being made. The answer is the same either way."""
    native: Any = chat_engine.native

    class Steps(BaseCallbackHandler):
        def __init__(self) -> None:
            self.steps: list[int] = []

        def on_llm_new_token(self, token: str | list[str | dict[str, Any]], **kwargs: Any) -> None:
            self.steps.append(native.num_steps)

    handler = Steps()
    with_handler = chat.invoke(COUNT, config={"callbacks": [handler]})
    assert len(set(handler.steps)) > 3  # tokens came during the generation
    wait_idle_sync(chat_engine)
    assert chat.invoke(COUNT).content == with_handler.content
    assert chat.invoke(COUNT, stop=["never-said"]).content == with_handler.content


def test_rate_limiter_and_disable_streaming(chat_engine: AsyncEngine) -> None:
    class Counting(BaseRateLimiter):
        def __init__(self) -> None:
            self.calls = 0

        def acquire(self, *, blocking: bool = True) -> bool:
            self.calls += 1
            return True

        async def aacquire(self, *, blocking: bool = True) -> bool:
            self.calls += 1
            return True

    limiter = Counting()
    chat = FuriosaChat(temperature=0, max_tokens=4, rate_limiter=limiter, disable_streaming=True)
    chat.invoke(COUNT)
    chunks = list(chat.stream(COUNT))
    assert limiter.calls == 2
    assert len(chunks) == 1 and chunks[0].content  # the whole answer, not streamed


def test_engine_is_shared_and_can_be_given(chat_engine: AsyncEngine) -> None:
    assert TopLevelChat is FuriosaChat
    assert FuriosaChat()._get_engine() is chat_engine
    assert FuriosaChat(engine=chat_engine)._get_engine() is chat_engine
    # backend="auto" is torch on a machine without an NPU: the same shared engine.
    assert FuriosaChat(backend="torch")._get_engine() is chat_engine
    params = FuriosaChat(temperature=0.5)._get_ls_params(stop=["x"], model="other")
    assert params["ls_provider"] == "furiosa"
    assert params["ls_model_name"] == "other"
    assert params["ls_stop"] == ["x"]


def test_per_call_model(chat_engine: AsyncEngine) -> None:
    from furiosa_integrations.models.resolve import default_chat_gguf

    chat = FuriosaChat(temperature=0, max_tokens=3)
    # The default model's GGUF file resolves to the same converted model: no second load.
    message = chat.invoke(COUNT, model=str(default_chat_gguf()))
    assert message.response_metadata["model_name"] == chat_engine.model_name
    with pytest.raises(FileNotFoundError):
        chat.invoke(COUNT, model="/nonexistent/model")


def test_leaving_a_stream_early_aborts(chat: FuriosaChat, chat_engine: AsyncEngine) -> None:
    for _ in chat.stream(COUNT, max_tokens=200):
        break
    wait_idle_sync(chat_engine)


# ---- async ----


async def test_async_invoke_stream_and_batch(chat: FuriosaChat, chat_engine: AsyncEngine) -> None:
    message = await chat.ainvoke(COUNT)
    chunks = [chunk async for chunk in chat.astream(COUNT)]
    assert "".join(str(c.content) for c in chunks) == message.content
    assert chunks[-1].usage_metadata is not None

    # abatch submits everything at once: the engine runs the requests together.
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            stats = chat_engine.stats()
            peak = max(peak, stats.running + stats.waiting)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    results = await chat.abatch([COUNT] * 4, max_tokens=16)
    watcher.cancel()
    assert peak >= 2
    assert len({r.content for r in results}) == 1  # greedy: the same answer four times
    await wait_idle(chat_engine)


async def test_async_early_exit_aborts(chat: FuriosaChat, chat_engine: AsyncEngine) -> None:
    stream = chat.astream(COUNT, max_tokens=200)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_idle(chat_engine)

    # Cancelled while the engine runs it (a fixed sleep raced the answer: 30 tokens take
    # ~0.3 s on a fast CPU); counting to 100 makes ~300 tokens, more than max_tokens.
    task = asyncio.create_task(chat.ainvoke("Count from 1 to 100.", max_tokens=200))
    while not chat_engine.requests:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(chat_engine)


# ---- tools ----


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is 23 degrees and foggy in {city}."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


PARIS_AND_LONDON = "What is the weather in Paris and in London?"


def test_tool_choice_values_map_to_the_engine() -> None:
    names = ["get_weather", "add"]
    assert _tool_choice(None, names) is None
    assert _tool_choice(False, names) is None
    assert _tool_choice("auto", names) is None
    assert _tool_choice("none", names) == "none"
    assert _tool_choice("any", names) == "required"
    assert _tool_choice("required", names) == "required"
    assert _tool_choice(True, names) == "required"
    assert _tool_choice("add", names) == {"type": "function", "function": {"name": "add"}}
    with pytest.raises(ValueError, match="not one of the bound tools"):
        _tool_choice("multiply", names)


def test_bind_tools_converts_tools(chat: FuriosaChat) -> None:
    bound = chat.bind_tools([get_weather, add], tool_choice="add", parallel_tool_calls=False)
    assert isinstance(bound, RunnableBinding)
    assert [t["function"]["name"] for t in bound.kwargs["tools"]] == ["get_weather", "add"]
    assert bound.kwargs["tools"][1]["function"]["parameters"]["required"] == ["a", "b"]
    assert bound.kwargs["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert bound.kwargs["parallel_tool_calls"] is False


def test_parallel_tool_calls_stream_as_separate_chunks(chat: FuriosaChat) -> None:
    llm = chat.bind_tools([get_weather], tool_choice="required", max_tokens=80)
    chunks = cast("list[AIMessageChunk]", list(llm.stream(PARIS_AND_LONDON)))
    call_chunks = [c for chunk in chunks for c in chunk.tool_call_chunks]
    assert [(c["name"], c["args"], c["index"]) for c in call_chunks] == [
        ("get_weather", '{"city": "Paris"}', 0),
        ("get_weather", '{"city": "London"}', 1),
    ]
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    assert [call["args"] for call in full.tool_calls] == [{"city": "Paris"}, {"city": "London"}]
    assert full.response_metadata["finish_reason"] == "tool_calls"

    message = llm.invoke(PARIS_AND_LONDON)
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "London"}),
    ]
    assert len({c["id"] for c in message.tool_calls}) == 2
    # parallel_tool_calls=False: one call, and generation ends after it.
    single = llm.invoke(PARIS_AND_LONDON, parallel_tool_calls=False)
    assert [c["args"] for c in single.tool_calls] == [{"city": "Paris"}]


def _converted_then_added(chunks: list[GenerationChunk], model_name: str) -> list[Any]:
    """What invoke returned before ``ChatAggregate``: every engine chunk converted to
    LangChain's, the chunks of each completion added up, then made a message."""
    convert = ChatChunkConverter(model_name)
    added: dict[int, Any] = {}
    for chunk in chunks:
        one = convert(chunk)
        added[chunk.index] = added[chunk.index] + one if chunk.index in added else one
    return [
        (message_chunk_to_message(c.message), c.generation_info) for _, c in sorted(added.items())
    ]


def _aggregated(chunks: list[GenerationChunk], model_name: str) -> list[Any]:
    result = ChatAggregate("label")
    for chunk in chunks:
        result.add(chunk)
    return [(g.message, g.generation_info) for g in result.chat_result(model_name).generations]


def test_invoke_adds_up_engine_chunks_as_added_up_langchain_chunks(
    chat: FuriosaChat, chat_engine: AsyncEngine
) -> None:
    """invoke adds up the engine's chunks and converts each completion once; the result is
    the one that adding up every converted chunk gives: text, tool calls and their ids,
    logprobs, finish and usage, for one completion and for several."""

    def engine_chunks(messages: list[BaseMessage], **options: Any) -> list[GenerationChunk]:
        engine, request = chat._request(messages, None, options)
        return list(engine.stream_sync(**request))

    weather = [convert_to_openai_tool(get_weather)]
    requests = [
        engine_chunks([HumanMessage(COUNT)]),
        engine_chunks(
            [HumanMessage(COUNT)], n=2, temperature=0.9, seed=3, logprobs=2, max_tokens=6
        ),
        engine_chunks(
            [HumanMessage(PARIS_AND_LONDON)], tools=weather, tool_choice="required", max_tokens=80
        ),
    ]
    assert sum(len(c.tool_calls) for c in requests[2]) == 2  # the cases cover what they say
    assert {c.index for c in requests[1]} == {0, 1} and all(c.logprobs for c in requests[1][:-1])
    # reasoning, and a call split over chunks, made by hand (the default model has neither)
    requests.append(
        [
            GenerationChunk("r", reasoning_text="Weather: "),
            GenerationChunk("r", reasoning_text="look it up.", text="Let me check."),
            GenerationChunk("r", tool_calls=[ToolCall("call_1", "get_weather", {"city": "Oslo"})]),
            GenerationChunk(
                "r",
                tool_calls=[ToolCall("call_2", "get_weather", {"city": "Rome"})],
                finish_reason="tool_calls",
                usage=Usage(12, 30, 4),
            ),
        ]
    )
    for chunks in requests:
        old = _converted_then_added(chunks, chat_engine.model_name)
        assert _aggregated(chunks, chat_engine.model_name) == old
        assert sum(m.usage_metadata is not None for m, _ in old) == 1


def test_named_tool_choice_and_none(chat: FuriosaChat) -> None:
    llm = chat.bind_tools([get_weather, add], tool_choice="add", max_tokens=48)
    named = llm.invoke("What is 12 plus 30?")
    assert [(c["name"], c["args"]) for c in named.tool_calls] == [("add", {"a": 12, "b": 30})]
    assert named.content == ""
    none = chat.bind_tools([get_weather, add], tool_choice="none").invoke("Say hello.")
    assert none.tool_calls == [] and none.content


def test_tool_result_in_the_history_is_used(chat: FuriosaChat) -> None:
    question = HumanMessage("What is the weather in Paris?")
    llm = chat.bind_tools([get_weather], tool_choice="get_weather", max_tokens=48)
    call = llm.invoke([question])
    assert call.tool_calls[0]["args"] == {"city": "Paris"}
    result = get_weather.invoke(call.tool_calls[0])
    assert isinstance(result, ToolMessage)
    answer = chat.bind_tools([get_weather]).invoke([question, call, result], max_tokens=40)
    assert answer.tool_calls == []
    assert "foggy" in str(answer.content) or "23" in str(answer.content)


def test_force_tool_call_on_user_turn(chat_engine: AsyncEngine) -> None:
    llm = FuriosaChat(temperature=0, max_tokens=40, force_tool_call_on_user_turn=True)
    question = HumanMessage("What is the weather in Paris?")
    tools = [convert_to_openai_tool(get_weather)]
    _, request = llm._request([question], None, {"tools": tools})
    assert request["tool_choice"] == "required"
    result = ToolMessage("foggy", tool_call_id="c1")
    _, request = llm._request([question, AIMessage(""), result], None, {"tools": tools})
    assert request["tool_choice"] is None  # after a tool result the model decides
    _, request = llm._request([question], None, {"tools": tools, "tool_choice": "none"})
    assert request["tool_choice"] == "none"  # an explicit choice wins
    message = llm.bind_tools([get_weather]).invoke([question])
    assert [c["args"] for c in message.tool_calls][:1] == [{"city": "Paris"}]


# ---- structured output ----


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="the person's first name")
    age: int = Field(description="the person's age in years")


class PersonDict(TypedDict):
    """A person mentioned in the text."""

    name: Annotated[str, ..., "the person's first name"]
    age: Annotated[int, ..., "the person's age in years"]


ADA = "Return the name and age of the person: Ada, 36 years old."


@pytest.fixture
def extractor(chat_engine: AsyncEngine) -> FuriosaChat:
    return FuriosaChat(temperature=0, max_tokens=48)


def test_structured_output_json_schema(extractor: FuriosaChat) -> None:
    assert extractor.with_structured_output(Person).invoke(ADA) == Person(name="Ada", age=36)
    assert extractor.with_structured_output(PersonDict).invoke(ADA) == {"name": "Ada", "age": 36}
    schema = Person.model_json_schema()
    assert extractor.with_structured_output(schema).invoke(ADA) == {"name": "Ada", "age": 36}
    streamed = list(extractor.with_structured_output(Person).stream(ADA))
    assert streamed and all(isinstance(p, Person) for p in streamed)
    assert streamed[-1] == Person(name="Ada", age=36)


def test_structured_output_function_calling_and_json_mode(extractor: FuriosaChat) -> None:
    by_tool = extractor.with_structured_output(Person, method="function_calling")
    assert by_tool.invoke(ADA) == Person(name="Ada", age=36)
    as_dict = extractor.with_structured_output(PersonDict, method="function_calling")
    assert as_dict.invoke(ADA) == {"name": "Ada", "age": 36}
    json_mode = extractor.with_structured_output(None, method="json_mode")
    value = json_mode.invoke(ADA + ' Reply in JSON with the keys "name" and "age".')
    assert isinstance(value, dict)


def test_structured_output_include_raw(extractor: FuriosaChat) -> None:
    result = extractor.with_structured_output(Person, include_raw=True).invoke(ADA)
    assert isinstance(result["raw"], AIMessage)
    assert result["raw"].content == '{"name": "Ada", "age": 36}'
    assert result["parsed"] == Person(name="Ada", age=36)
    assert result["parsing_error"] is None
    # A budget too small for the whole answer still ends in a valid object, marked as cut;
    # one too small for any complete object is refused before queuing.
    cut = FuriosaChat(temperature=0, max_tokens=16).with_structured_output(Person, include_raw=True)
    result = cut.invoke(ADA)
    assert isinstance(result["parsed"], Person) and result["parsing_error"] is None
    assert result["raw"].response_metadata["finish_reason"] == "length"
    short = FuriosaChat(temperature=0, max_tokens=3)
    with pytest.raises(InvalidRequestError, match="max_tokens=3"):
        short.with_structured_output(Person, include_raw=True).invoke(ADA)
    with pytest.raises(ValueError, match="method"):
        short.with_structured_output(Person, method="xml")  # type: ignore[arg-type]
