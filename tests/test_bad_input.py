"""Bad input through the LangChain and LlamaIndex adapters: a typed error at the call,
before anything is queued, and the engine keeps serving.

Where each case is covered at the engine level:

- empty prompt / message list, non-text prompt, over-context prompt, max_tokens < 1,
  temperature < 0, top_p outside (0, 1], duplicate request id, empty or non-string
  embedding input, image content on a text-only model: ``test_engine_validation.py``;
- unknown tool_choice, tool parameters that are not an object schema:
  ``test_tool_calling.py``;
- invalid JSON schema / regex / grammar: ``test_structured_outputs.py``;
- a message list whose messages are all empty (the chat form of an empty prompt): here.

Each case below runs once through a LangChain and once through a LlamaIndex adapter.
"Before queuing" is checked on the native engine itself: no request id, nothing waiting
or running, and not one prompt token computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
)

from furiosa_integrations import FuriosaChat, FuriosaEmbeddings
from furiosa_integrations.engine import (
    AsyncEngine,
    ContextLengthExceededError,
    DuplicateRequestIdError,
    InvalidRequestError,
    SamplingParams,
    StructuredOutputsParams,
)
from furiosa_integrations.langchain.llms import FuriosaLLM as LangChainLLM
from furiosa_integrations.llama_index import FuriosaEmbedding, FuriosaLLM

OBJECT_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a word up.",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
    },
}
ARRAY_TOOL = {
    "type": "function",
    "function": {"name": "listy", "description": "Bad.", "parameters": {"type": "array"}},
}
BAD_SCHEMA = {"title": "Bad", "type": "object", "properties": {"a": {"type": "nonsense"}}}
IMAGE_URL = "data:image/png;base64,iVBORw0KGgo="


class Adapters:
    """One of each adapter, all on the shared default engines."""

    def __init__(self) -> None:
        self.chat = FuriosaChat(temperature=0, max_tokens=4)
        self.lc_llm = LangChainLLM(temperature=0, max_tokens=4)
        self.lc_embed = FuriosaEmbeddings()
        self.llm = FuriosaLLM(temperature=0.0, max_tokens=4)
        self.li_embed = FuriosaEmbedding()

    def long_prompt(self) -> str:
        assert self.llm.engine is not None
        return "word " * (self.llm.engine.max_model_len + 10)


@pytest.fixture(scope="module")
def adapters(chat_engine: AsyncEngine, embed_engine: AsyncEngine) -> Adapters:
    return Adapters()


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


Case = tuple[str, Callable[[Adapters], Any], type[Exception], str]

# (id, the call, the error it must raise, a fragment of the message)
LANGCHAIN_CASES: list[Case] = [
    ("empty-message-list", lambda a: a.chat.invoke([]), InvalidRequestError, "non-empty"),
    ("empty-prompt-chat", lambda a: a.chat.invoke(""), InvalidRequestError, "no content"),
    (
        "empty-messages-chat",
        lambda a: a.chat.invoke([SystemMessage(""), HumanMessage("")]),
        InvalidRequestError,
        "no content",
    ),
    ("empty-prompt-llm", lambda a: a.lc_llm.invoke(""), InvalidRequestError, "non-empty"),
    # LangChain itself refuses a prompt that is not text or messages, before our code runs.
    (
        "non-text-prompt-llm",
        lambda a: a.lc_llm.invoke(123),  # type: ignore[arg-type]
        ValueError,
        "Invalid input type",
    ),
    (
        "non-text-content",
        lambda a: a.chat.invoke([HumanMessage(content=[{"type": "audio", "data": "AAAA"}])]),
        InvalidRequestError,
        "part type 'audio'",
    ),
    (
        "over-context",
        lambda a: a.chat.invoke(a.long_prompt()),
        ContextLengthExceededError,
        "context length",
    ),
    (
        "over-context-llm",
        lambda a: a.lc_llm.invoke(a.long_prompt()),
        ContextLengthExceededError,
        "context length",
    ),
    (
        "max-tokens-0",
        lambda a: a.chat.invoke("hi", max_tokens=0),
        InvalidRequestError,
        "max_tokens",
    ),
    (
        "max-tokens-field",
        lambda a: FuriosaChat(max_tokens=-1).invoke("hi"),
        InvalidRequestError,
        "max_tokens",
    ),
    (
        "temperature-negative",
        lambda a: a.chat.invoke("hi", temperature=-0.5),
        InvalidRequestError,
        "temperature",
    ),
    ("top-p-zero", lambda a: a.chat.invoke("hi", top_p=0.0), InvalidRequestError, "top_p"),
    ("top-p-above-one", lambda a: a.lc_llm.invoke("hi", top_p=1.5), InvalidRequestError, "top_p"),
    (
        "unknown-tool-choice-bind",
        lambda a: a.chat.bind_tools([OBJECT_TOOL], tool_choice="bogus"),
        InvalidRequestError,
        "bogus",
    ),
    (
        "unknown-tool-choice-call",
        lambda a: a.chat.invoke("hi", tools=[OBJECT_TOOL], tool_choice={"type": "weird"}),
        InvalidRequestError,
        "weird",
    ),
    (
        "invalid-json-schema",
        lambda a: a.chat.with_structured_output(BAD_SCHEMA).invoke("hi"),
        InvalidRequestError,
        "not a valid JSON schema",
    ),
    (
        "invalid-regex",
        lambda a: a.chat.invoke("hi", structured_outputs=StructuredOutputsParams(regex="(ab")),
        InvalidRequestError,
        "regex",
    ),
    (
        "invalid-grammar",
        lambda a: a.chat.invoke(
            "hi", structured_outputs=StructuredOutputsParams(grammar="root ::= undefined_rule")
        ),
        InvalidRequestError,
        "grammar",
    ),
    (
        "tool-parameters-not-object",
        lambda a: a.chat.bind_tools([ARRAY_TOOL]).invoke("hi"),
        InvalidRequestError,
        "type 'object'",
    ),
    (
        "non-string-embedding-input",
        lambda a: a.lc_embed.embed_documents(["fine", None]),  # type: ignore[list-item]
        InvalidRequestError,
        "texts\\[1\\] must be a string",
    ),
    (
        "non-string-embedding-query",
        lambda a: a.lc_embed.embed_query(42),  # type: ignore[arg-type]
        InvalidRequestError,
        "must be a string",
    ),
    (
        "image-on-text-only-model",
        lambda a: a.chat.invoke(
            [
                HumanMessage(
                    content=[
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": IMAGE_URL}},
                    ]
                )
            ]
        ),
        InvalidRequestError,
        "text-only",
    ),
]

LLAMA_INDEX_CASES: list[Case] = [
    ("empty-message-list", lambda a: a.llm.chat([]), InvalidRequestError, "non-empty"),
    ("empty-prompt", lambda a: a.llm.complete(""), InvalidRequestError, "no content"),
    (
        "empty-prompt-formatted",
        lambda a: a.llm.complete("", formatted=True),
        InvalidRequestError,
        "non-empty",
    ),
    ("non-text-prompt", lambda a: a.llm.complete(123), InvalidRequestError, "got int"),
    (
        "non-text-content",
        lambda a: a.llm.chat(
            [ChatMessage(role=MessageRole.USER, blocks=[AudioBlock(audio=b"RIFF")])]
        ),
        InvalidRequestError,
        "part type 'audio'",
    ),
    (
        "over-context",
        lambda a: a.llm.complete(a.long_prompt()),
        ContextLengthExceededError,
        "context length",
    ),
    (
        "max-tokens-0",
        lambda a: a.llm.chat(_user("hi"), max_tokens=0),
        InvalidRequestError,
        "max_tokens",
    ),
    # The LlamaIndex field itself is range-checked by pydantic (a ValueError) at construction.
    ("max-tokens-field", lambda a: FuriosaLLM(max_tokens=0), ValueError, "max_tokens"),
    (
        "temperature-negative",
        lambda a: a.llm.complete("hi", temperature=-1.0),
        InvalidRequestError,
        "temperature",
    ),
    ("top-p-zero", lambda a: a.llm.chat(_user("hi"), top_p=0.0), InvalidRequestError, "top_p"),
    (
        "top-p-above-one",
        lambda a: a.llm.chat(_user("hi"), top_p=1.01),
        InvalidRequestError,
        "top_p",
    ),
    (
        "unknown-tool-choice",
        lambda a: a.llm.chat(_user("hi"), tools=[OBJECT_TOOL], tool_choice="bogus"),
        InvalidRequestError,
        "bogus",
    ),
    (
        "invalid-json-schema",
        lambda a: a.llm.chat(
            _user("hi"), structured_outputs=StructuredOutputsParams(json=BAD_SCHEMA)
        ),
        InvalidRequestError,
        "not a valid JSON schema",
    ),
    (
        "invalid-regex",
        lambda a: a.llm.complete("hi", structured_outputs=StructuredOutputsParams(regex="[a-")),
        InvalidRequestError,
        "regex",
    ),
    (
        "invalid-grammar",
        lambda a: a.llm.chat(
            _user("hi"), structured_outputs=StructuredOutputsParams(grammar="this is not ebnf")
        ),
        InvalidRequestError,
        "grammar",
    ),
    (
        "tool-parameters-not-object",
        lambda a: a.llm.chat(_user("hi"), tools=[ARRAY_TOOL]),
        InvalidRequestError,
        "type 'object'",
    ),
    (
        "non-string-embedding-input",
        lambda a: a.li_embed.get_text_embedding_batch(["fine", None]),  # type: ignore[list-item]
        InvalidRequestError,
        "texts\\[1\\] must be a string",
    ),
    (
        "non-string-embedding-query",
        lambda a: a.li_embed.get_query_embedding(42),  # type: ignore[arg-type]
        InvalidRequestError,
        "must be a string",
    ),
    (
        "image-on-text-only-model",
        lambda a: a.llm.chat(
            [
                ChatMessage(
                    role=MessageRole.USER,
                    blocks=[TextBlock(text="What is this?"), ImageBlock(url=IMAGE_URL)],
                )
            ]
        ),
        InvalidRequestError,
        "text-only",
    ),
]


class Untouched:
    """Checks that a call queued nothing: no ids, no work, no prompt token computed."""

    def __init__(self, *engines: AsyncEngine) -> None:
        self.engines = engines
        self.prefilled = [self._prefilled(e) for e in engines]

    @staticmethod
    def _prefilled(engine: AsyncEngine) -> int:
        return int(getattr(engine.native, "num_prefill_tokens", 0))

    def check(self) -> None:
        for engine, before in zip(self.engines, self.prefilled, strict=True):
            stats = engine.stats()
            assert stats.request_ids == stats.waiting == stats.running == 0, stats
            assert stats.used_cache_slots == 0, stats
            assert self._prefilled(engine) == before, "a prompt reached the native engine"
            assert engine.admission.active == engine.admission.waiting == 0


def _still_serving_langchain(adapters: Adapters) -> None:
    assert adapters.chat.invoke("Say hi.", max_tokens=2).content
    assert len(adapters.lc_embed.embed_query("still here")) == 384


def _still_serving_llama_index(adapters: Adapters) -> None:
    assert adapters.llm.complete("Say hi.", max_tokens=2).text
    assert len(adapters.li_embed.get_query_embedding("still here")) == 384


# Each framework's cases, and the request that shows its adapters still serve afterwards.
FRAMEWORKS: dict[str, tuple[list[Case], Callable[[Adapters], None]]] = {
    "langchain": (LANGCHAIN_CASES, _still_serving_langchain),
    "llama_index": (LLAMA_INDEX_CASES, _still_serving_llama_index),
}


@pytest.mark.parametrize(
    ("call", "error", "match", "still_serving"),
    [
        pytest.param(call, error, match, still_serving, id=f"{framework}-{name}")
        for framework, (cases, still_serving) in FRAMEWORKS.items()
        for name, call, error, match in cases
    ],
)
def test_bad_input_is_a_typed_error_before_queuing(
    adapters: Adapters,
    call: Callable[[Adapters], Any],
    error: type[Exception],
    match: str,
    still_serving: Callable[[Adapters], None],
) -> None:
    assert adapters.llm.engine is not None and adapters.li_embed.engine is not None
    untouched = Untouched(adapters.llm.engine, adapters.li_embed.engine)
    with pytest.raises(error, match=match):
        call(adapters)
    untouched.check()
    still_serving(adapters)


async def test_async_calls_raise_at_the_call_too(adapters: Adapters) -> None:
    assert adapters.llm.engine is not None
    untouched = Untouched(adapters.llm.engine)
    with pytest.raises(InvalidRequestError, match="top_p"):
        await adapters.chat.ainvoke("hi", top_p=2.0)
    with pytest.raises(InvalidRequestError, match="top_p"):
        async for _ in adapters.chat.astream("hi", top_p=2.0):
            pass
    with pytest.raises(InvalidRequestError, match="temperature"):
        await adapters.llm.achat(_user("hi"), temperature=-2.0)
    with pytest.raises(InvalidRequestError, match="temperature"):
        # astream_chat validates when called, before the stream is iterated.
        await adapters.llm.astream_chat(_user("hi"), temperature=-2.0)
    with pytest.raises(InvalidRequestError, match="must be a string"):
        await adapters.lc_embed.aembed_documents([b"bytes"])  # type: ignore[list-item]
    with pytest.raises(InvalidRequestError, match="must be a string"):
        await adapters.li_embed.aget_text_embedding_batch([3.5])  # type: ignore[list-item]
    untouched.check()


@pytest.fixture
def in_flight(adapters: Adapters) -> Iterator[tuple[Iterator[Any], Iterator[Any]]]:
    """A LangChain and a LlamaIndex stream, each started (ids claimed), closed afterwards."""
    long_run = {"max_tokens": 64, "ignore_eos": True}
    lc_stream = adapters.chat.stream("Count to fifty.", request_id="dup-lc", **long_run)
    li_stream = adapters.llm.stream_chat(
        _user("Count to fifty."), request_id="dup-li", max_tokens=64
    )
    next(lc_stream)
    next(li_stream)
    yield lc_stream, li_stream
    lc_stream.close()  # type: ignore[attr-defined]
    li_stream.close()  # type: ignore[attr-defined]


def test_duplicate_request_id_through_both_adapters(
    adapters: Adapters, in_flight: tuple[Iterator[Any], Iterator[Any]], chat_engine: AsyncEngine
) -> None:
    prefilled = chat_engine.native.num_prefill_tokens  # type: ignore[attr-defined]
    for call in (
        lambda: adapters.chat.invoke("hi", request_id="dup-lc"),
        lambda: adapters.chat.invoke("hi", request_id="dup-li"),
        lambda: adapters.llm.chat(_user("hi"), request_id="dup-lc"),
        lambda: adapters.llm.complete("hi", request_id="dup-li"),
    ):
        with pytest.raises(DuplicateRequestIdError, match="already in flight"):
            call()
    assert chat_engine.stats().request_ids == 2  # only the two streams
    assert chat_engine.native.num_prefill_tokens == prefilled  # type: ignore[attr-defined]
    # The streams that own the ids are unharmed.
    lc_stream, li_stream = in_flight
    assert next(lc_stream).content is not None
    assert next(li_stream).message is not None


def test_ids_are_free_again_after_the_streams_close(
    adapters: Adapters, chat_engine: AsyncEngine
) -> None:
    from tests.engine_checks import wait_idle_sync

    wait_idle_sync(chat_engine)
    assert adapters.chat.invoke("Say hi.", request_id="dup-lc", max_tokens=2).content
    assert adapters.llm.complete("Say hi.", request_id="dup-li", max_tokens=2).text


def test_empty_embedding_batch_is_an_empty_result_in_the_frameworks(
    adapters: Adapters, embed_engine: AsyncEngine
) -> None:
    # LangChain's and LlamaIndex's embedding interfaces answer an empty batch with an
    # empty list (an index over no documents is valid), so the adapters do the same and
    # send nothing; the engine itself refuses an empty batch (test_engine_validation.py).
    untouched = Untouched(embed_engine)
    assert adapters.lc_embed.embed_documents([]) == []
    assert adapters.li_embed.get_text_embedding_batch([]) == []
    untouched.check()
    with pytest.raises(InvalidRequestError, match="must not be empty"):
        embed_engine.embed_sync([])


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": ""}],
        [{"role": "system", "content": ""}, {"role": "user", "content": [{"type": "text"}]}],
        [{"role": "user", "content": None}, {"role": "assistant", "content": ""}],
    ],
)
async def test_engine_refuses_messages_that_are_all_empty(
    chat_engine: AsyncEngine, messages: list[dict[str, Any]]
) -> None:
    with pytest.raises(InvalidRequestError, match="no content"):
        chat_engine.stream(messages=messages, params=SamplingParams(max_tokens=1))
    assert chat_engine.stats().request_ids == 0
    # One non-empty message is enough.
    ok = [*messages, {"role": "user", "content": "Say hi."}]
    result = await chat_engine.generate(messages=ok, params=SamplingParams(max_tokens=2))
    assert result.outputs[0].finish_reason in ("stop", "length")
