"""FuriosaLLM's LlamaIndex interface on the real default model: every sync and async
method, streaming, options, token counts, metadata, callbacks and instrumentation."""

from __future__ import annotations

import types
from typing import Any

import pytest
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms import ChatMessage

from furiosa_integrations.engine import AsyncEngine, InvalidRequestError
from furiosa_integrations.llama_index import FuriosaEmbedding, FuriosaLLM
from tests.engine_checks import wait_idle, wait_idle_sync

QUESTION = "What is the capital of France?"
MESSAGES = [ChatMessage(role="user", content=QUESTION)]


def test_default_construction_shares_the_engines(
    chat_engine: AsyncEngine, embed_engine: AsyncEngine
) -> None:
    assert FuriosaLLM().engine is chat_engine
    assert FuriosaLLM(model="default", backend="auto").engine is chat_engine
    assert FuriosaLLM(engine=chat_engine).engine is chat_engine
    with pytest.raises(ValueError, match="not a generation model"):
        FuriosaLLM(engine=embed_engine)
    with pytest.raises(ValueError, match="not an embedding model"):
        FuriosaEmbedding(engine=chat_engine)


def test_metadata(llm: FuriosaLLM, chat_engine: AsyncEngine) -> None:
    meta = llm.metadata
    assert meta.context_window == chat_engine.max_model_len == 8192
    assert meta.num_output == 48
    assert meta.is_chat_model and meta.is_function_calling_model
    assert meta.model_name == "SmolLM2-135M-Instruct"
    assert FuriosaLLM(max_tokens=7).metadata.num_output == 7
    assert llm.class_name() == "FuriosaLLM"


def test_chat_answers_with_token_counts(llm: FuriosaLLM) -> None:
    response = llm.chat(MESSAGES)
    assert "Paris" in (response.message.content or "")
    assert response.message.role == "assistant"
    assert response.delta is None
    counts = response.additional_kwargs
    assert counts["prompt_tokens"] > 5 and counts["completion_tokens"] > 0
    assert counts["total_tokens"] == counts["prompt_tokens"] + counts["completion_tokens"]
    assert response.raw["usage"] == counts
    assert response.raw["finish_reason"] == "stop"
    assert response.raw["model"] == "SmolLM2-135M-Instruct"


def test_complete_uses_the_chat_template_unless_formatted(
    llm: FuriosaLLM, chat_engine: AsyncEngine
) -> None:
    completion = llm.complete(QUESTION)
    assert completion.text == llm.chat(MESSAGES).message.content
    assert completion.additional_kwargs["completion_tokens"] > 0
    rendered = chat_engine.render_chat([{"role": "user", "content": QUESTION}])
    formatted = llm.complete(rendered, formatted=True)
    assert formatted.text == completion.text
    assert formatted.additional_kwargs["prompt_tokens"] == len(chat_engine.tokenize(rendered))


async def test_async_methods_match_sync(llm: FuriosaLLM) -> None:
    expected = llm.chat(MESSAGES).message.content
    assert (await llm.achat(MESSAGES)).message.content == expected
    assert (await llm.acomplete(QUESTION)).text == expected
    stream = await llm.astream_chat(MESSAGES)
    assert isinstance(stream, types.AsyncGeneratorType)  # = inspect.isasyncgen(stream)
    assert "".join([r.delta async for r in stream]) == expected
    cstream = await llm.astream_complete(QUESTION)
    assert isinstance(cstream, types.AsyncGeneratorType)
    assert "".join([r.delta async for r in cstream]) == expected


async def test_whole_answers_are_read_at_the_end(llm: FuriosaLLM, chat_engine: AsyncEngine) -> None:
    """chat/complete and their async forms ask the engine for the end only
    (``RequestOutputKind.FINAL_ONLY``: no wake-up a token); the streams ask for every step."""
    from furiosa_integrations.engine import RequestOutputKind

    kinds: list[RequestOutputKind] = []
    original = chat_engine.native.stream_generate

    def record(prompt_token_ids: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
        kinds.append(params.output_kind)
        return original(prompt_token_ids, params, *args, **kwargs)

    chat_engine.native.stream_generate = record  # type: ignore[method-assign]
    try:
        await llm.achat(MESSAGES)
        await llm.acomplete(QUESTION)
        stream = await llm.astream_chat(MESSAGES)
        assert "".join([r.delta async for r in stream])
    finally:
        del chat_engine.native.stream_generate  # back to the class's method
    final = RequestOutputKind.FINAL_ONLY
    assert kinds[:2] == [final, final] and kinds[2] is not final
    await wait_idle(chat_engine)


@pytest.mark.parametrize("kind", ["stream_chat", "stream_complete"])
def test_streamed_deltas_add_up_to_the_full_text(llm: FuriosaLLM, kind: str) -> None:
    prompt = "Write one sentence about the sea."
    if kind == "stream_chat":
        responses = list(llm.stream_chat([ChatMessage(role="user", content=prompt)]))
        texts = [r.message.content for r in responses]
        full = llm.chat([ChatMessage(role="user", content=prompt)]).message.content
    else:
        responses = list(llm.stream_complete(prompt))
        texts = [r.text for r in responses]
        full = llm.complete(prompt).text
    assert len(responses) > 3
    deltas = [r.delta or "" for r in responses]
    assert "".join(deltas) == texts[-1] == full
    for i in range(len(responses)):  # each response holds the text so far
        assert texts[i] == "".join(deltas[: i + 1])
    last = responses[-1]
    assert last.raw["finish_reason"] in ("stop", "length")
    assert last.additional_kwargs["completion_tokens"] > 0
    assert "usage" not in responses[0].raw or len(responses) == 1  # usage comes at the end


def test_stop_and_per_call_options(llm: FuriosaLLM) -> None:
    prompt = "Count from 1 to 10, separated by commas."
    full = llm.complete(prompt).text
    assert "5" in full
    stopped = llm.complete(prompt, stop=["5"])
    assert stopped.text == full[: full.index("5")]
    assert stopped.raw["finish_reason"] == "stop"
    as_field = FuriosaLLM(temperature=0.0, max_tokens=48, stop=["5"]).complete(prompt)
    assert as_field.text == stopped.text
    short = llm.complete(prompt, max_tokens=3)
    assert short.additional_kwargs["completion_tokens"] == 3
    assert short.raw["finish_reason"] == "length"
    # sampling: a seed makes a sampled answer reproducible
    a = llm.complete("Tell me a word.", temperature=1.0, seed=7, max_tokens=8).text
    b = llm.complete("Tell me a word.", temperature=1.0, seed=7, max_tokens=8).text
    assert a == b


def test_logprobs(llm: FuriosaLLM) -> None:
    response = llm.chat(MESSAGES, logprobs=2, max_tokens=4)
    assert response.logprobs is not None and len(response.logprobs) == 4
    assert all(len(top) == 2 for top in response.logprobs)
    assert all(top[0].logprob <= 0 for top in response.logprobs)


def test_system_prompt_field(chat_engine: AsyncEngine) -> None:
    system = "You answer in one word."
    llm = FuriosaLLM(system_prompt=system, temperature=0.0, max_tokens=8)
    with_field = llm.chat(MESSAGES)
    expected = chat_engine.render_chat(
        [{"role": "system", "content": system}, {"role": "user", "content": QUESTION}]
    )
    assert with_field.additional_kwargs["prompt_tokens"] == len(chat_engine.tokenize(expected))
    # a conversation that brings its own system message keeps it, alone
    own = [ChatMessage(role="system", content="Be brief."), *MESSAGES]
    mine = chat_engine.render_chat(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    )
    assert llm.chat(own).additional_kwargs["prompt_tokens"] == len(chat_engine.tokenize(mine))


def test_invalid_options_raise_before_queuing(llm: FuriosaLLM, chat_engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="Unknown option 'temprature'"):
        llm.chat(MESSAGES, temprature=0.5)
    with pytest.raises(InvalidRequestError, match="top_p"):
        llm.stream_chat(MESSAGES, top_p=2.0)
    with pytest.raises(ValueError):
        FuriosaLLM(temperature=-1.0)
    wait_idle_sync(chat_engine)


def test_breaking_out_of_a_stream_aborts_the_request(
    llm: FuriosaLLM, chat_engine: AsyncEngine
) -> None:
    stream = llm.stream_complete("Write a long story about a dragon.", max_tokens=200)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    wait_idle_sync(chat_engine)


async def test_async_stream_closed_early_aborts(llm: FuriosaLLM, chat_engine: AsyncEngine) -> None:
    stream = await llm.astream_chat(
        [ChatMessage(role="user", content="Write a long story about a dragon.")], max_tokens=200
    )
    async for _ in stream:
        break
    await stream.aclose()
    await wait_idle(chat_engine)


def test_callbacks_fire_for_every_method(llm: FuriosaLLM) -> None:
    import asyncio

    handler = LlamaDebugHandler()
    llm_cb = FuriosaLLM(temperature=0.0, max_tokens=4, callback_manager=CallbackManager([handler]))

    async def run_async() -> None:
        await llm_cb.achat(MESSAGES)
        await llm_cb.acomplete(QUESTION)
        async for _ in await llm_cb.astream_chat(MESSAGES):
            pass
        async for _ in await llm_cb.astream_complete(QUESTION):
            pass

    llm_cb.chat(MESSAGES)
    llm_cb.complete(QUESTION)
    list(llm_cb.stream_chat(MESSAGES))
    list(llm_cb.stream_complete(QUESTION))
    asyncio.run(run_async())
    pairs = handler.get_event_pairs(CBEventType.LLM)
    assert len(pairs) == 8
    for _start, end in pairs:
        assert end.payload is not None
        response = end.payload.get("response") or end.payload.get("completion")
        assert response is not None
        assert response.additional_kwargs["completion_tokens"] == 4


class _Collect(BaseEventHandler):
    events: list[Any] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "Collect"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


async def test_instrumentation_events(llm: FuriosaLLM) -> None:
    root = get_dispatcher()
    collector = _Collect(events=[])
    root.add_event_handler(collector)
    try:
        await llm.achat(MESSAGES, max_tokens=4)
        async for _ in await llm.astream_complete(QUESTION, max_tokens=4):
            pass
    finally:
        root.event_handlers.remove(collector)
    names = [type(e).__name__ for e in collector.events]
    assert names.count("LLMChatStartEvent") == 1 and names.count("LLMChatEndEvent") == 1
    assert names.count("LLMCompletionStartEvent") == 1
    assert names.count("LLMCompletionInProgressEvent") >= 3
    assert names.count("LLMCompletionEndEvent") == 1
    end = next(e for e in collector.events if type(e).__name__ == "LLMChatEndEvent")
    assert end.response.message.content == "The capital of France"
