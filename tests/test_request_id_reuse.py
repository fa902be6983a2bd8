"""A request id is free again the moment an early exit returns, on every API: the engine's
stream, furiosa-llm's AsyncLLMEngine and LLMEngine, and both frameworks' adapters.

Each case ends a request early (break, ``aclose``, task cancellation, ``abort``) and at
once, with nothing awaited in between, starts a new request with the same id. (A ``break``
out of a framework's own *async* stream is the framework's async generator, which asyncio
closes on its next loop turn; ``aclose`` and cancellation are immediate: a task cancelled
while it awaits the stream. One cancelled while it awaits something else between chunks has
dropped the stream, as a ``break`` does. LlamaIndex's
callback wrapper around ``astream_chat`` does not close the stream it wraps when it is
closed itself: there, cancellation is immediate and ``aclose`` waits for the collector.)
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from llama_index.core.base.llms.types import ChatMessage

from furiosa_integrations.engine import (
    AsyncEngine,
    AsyncLLMEngine,
    LLMEngine,
    RequestOutput,
    SamplingParams,
)
from furiosa_integrations.langchain import FuriosaChat
from furiosa_integrations.llama_index import FuriosaLLM
from tests.engine_checks import wait_idle, wait_idle_sync

pytestmark = pytest.mark.models

LONG = SamplingParams(temperature=0.0, max_tokens=64, ignore_eos=True)
SHORT = SamplingParams(temperature=0.0, max_tokens=2)
QUESTION = [{"role": "user", "content": "Tell me a long story."}]


async def _first(stream: AsyncIterator[Any]) -> Any:
    return await stream.__anext__()


async def test_engine_stream(chat_engine: AsyncEngine) -> None:
    async def reuse(rid: str) -> None:
        result = await chat_engine.generate(messages=QUESTION, params=SHORT, request_id=rid)
        assert result.outputs[0].finish_reason == "length"

    async for _ in chat_engine.stream(messages=QUESTION, params=LONG, request_id="e-break"):
        break
    await reuse("e-break")

    stream = chat_engine.stream(messages=QUESTION, params=LONG, request_id="e-close")
    await _first(stream)
    await stream.aclose()
    await reuse("e-close")

    started = asyncio.Event()

    async def consume() -> None:
        async for _ in chat_engine.stream(messages=QUESTION, params=LONG, request_id="e-cancel"):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await reuse("e-cancel")

    chunks = []
    async for chunk in chat_engine.stream(messages=QUESTION, params=LONG, request_id="e-abort"):
        chunks.append(chunk)
        if len(chunks) == 2:
            await chat_engine.abort("e-abort")
    assert chunks[-1].finish_reason == "abort"
    await reuse("e-abort")
    await wait_idle(chat_engine)


async def test_async_llm_engine(chat_engine: AsyncEngine) -> None:
    api = AsyncLLMEngine.from_engine(chat_engine)
    prompt = "Once upon a time"

    async def reuse(rid: str) -> None:
        outputs = [out async for out in api.generate(prompt, SHORT, rid)]
        assert outputs[-1].finished

    async for _ in api.generate(prompt, LONG, "a-break"):
        break
    await reuse("a-break")

    gen = api.generate(prompt, LONG, "a2")  # the case: one output, aclose, reuse
    await _first(gen)
    await gen.aclose()
    await reuse("a2")

    async def consume() -> None:
        async for _ in api.generate(prompt, LONG, "a-cancel"):
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await reuse("a-cancel")

    outputs = []
    async for out in api.generate(prompt, LONG, "a-abort"):
        outputs.append(out)
        if len(outputs) == 2:
            await api.abort("a-abort")
    assert outputs[-1].outputs[0].finish_reason == "abort"
    await reuse("a-abort")
    await wait_idle(chat_engine)


def test_llm_engine(chat_engine: AsyncEngine) -> None:
    with LLMEngine.from_engine(chat_engine) as llm:
        llm.add_request("l-abort", "Once upon a time", LONG)
        assert llm.step()
        llm.abort_request("l-abort")
        llm.add_request("l-abort", "Once upon a time", SHORT)  # at once
        finished = []
        while llm.has_unfinished_requests():
            finished += [out for out in llm.step() if out.finished]
        assert [out.request_id for out in finished] == ["l-abort"]
        assert isinstance(finished[0], RequestOutput)
        assert finished[0].outputs[0].finish_reason == "length"
    wait_idle_sync(chat_engine)


def test_sync_streams_of_both_frameworks(chat_engine: AsyncEngine) -> None:
    chat = FuriosaChat(temperature=0, max_tokens=64, ignore_eos=True)
    llm = FuriosaLLM(temperature=0, max_tokens=64, ignore_eos=True)
    ask = [ChatMessage(role="user", content="Tell me a story.")]
    # The id is free when the loop's break returns: nothing waits on the bridge loop's
    # next turns or on the collector (off here, so a release that needs it shows). Each
    # round would race the bridge loop if any generator in the chain were left for asyncio
    # to finalize; the clean-clone CI once hit that with a single round.
    gc.disable()
    try:
        for _ in range(8):
            for _ in chat.stream("Tell me a story.", request_id="lc-break"):
                break
            assert len(chat_engine.requests) == 0
            chat.invoke("Hi", request_id="lc-break", max_tokens=2)
            for _ in llm.stream_chat(ask, request_id="li-break"):
                break
            assert len(chat_engine.requests) == 0
            llm.chat(ask, request_id="li-break", max_tokens=2)
    finally:
        gc.enable()
    wait_idle_sync(chat_engine)


async def test_langchain_async_streams(chat_engine: AsyncEngine) -> None:
    chat = FuriosaChat(temperature=0, max_tokens=64, ignore_eos=True)
    short: dict[str, Any] = {"max_tokens": 2}
    stream = cast(
        "AsyncGenerator[AIMessageChunk, None]",
        chat.astream([HumanMessage("Tell me a story.")], request_id="lc-close"),
    )
    await _first(stream)
    await stream.aclose()
    await chat.ainvoke("Hi", request_id="lc-close", **short)

    async def consume() -> None:  # awaits only the stream: the cancel lands inside it
        async for _ in chat.astream("Tell me a story.", request_id="lc-cancel"):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await chat.ainvoke("Hi", request_id="lc-cancel", **short)
    await wait_idle(chat_engine)


async def test_llama_index_async_stream(chat_engine: AsyncEngine) -> None:
    llm = FuriosaLLM(temperature=0, max_tokens=64, ignore_eos=True)
    ask = [ChatMessage(role="user", content="Tell me a story.")]

    async def consume() -> None:  # awaits only the stream: the cancel lands inside it
        async for _ in await llm.astream_chat(ask, request_id="li-cancel"):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await llm.achat(ask, request_id="li-cancel", max_tokens=2)

    await wait_idle(chat_engine)
