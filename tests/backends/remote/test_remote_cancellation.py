"""Breaking out of a stream, cancelling a task and an explicit abort each end the request
on the server, checked on the server's side: its native engine saw the abort while the
request still ran (``aborted_in_flight``), stopped stepping, and ``/metrics`` reads 0.

(furiosa-llm's server also aborts every request after it completes, so the plain list
of aborts says nothing; the test routes of ``serve_furiosa_llm.py`` tell them apart.)
"""

from __future__ import annotations

import asyncio
import time

import pytest

from furiosa_integrations import FuriosaChat
from furiosa_integrations.engine import AsyncEngine, SamplingParams
from tests.engine_checks import wait_idle, wait_idle_sync

from .servers import FuriosaServer

pytestmark = pytest.mark.models

LONG = SamplingParams(max_tokens=2000, temperature=0.0, ignore_eos=True)
MESSAGES = [{"role": "user", "content": "Tell me a very long story."}]


def check_aborted_on_the_server(server: FuriosaServer, count: int = 1) -> None:
    state = server.wait_server_idle()
    assert len(state["aborted_in_flight"]) == count, state
    assert all(state["finished"][rid] == "abort" for rid in state["aborted_in_flight"])
    steps = state["num_steps"]
    time.sleep(0.3)
    assert server.state()["num_steps"] == steps  # nothing generates any more
    assert server.metric("furiosa_llm_num_requests_running") == 0


async def test_break_ends_the_server_request(
    remote_chat: AsyncEngine, served: FuriosaServer
) -> None:
    chunks = 0
    async for _ in remote_chat.stream(messages=MESSAGES, params=LONG):
        chunks += 1
        if chunks == 3:
            break
    await wait_idle(remote_chat)
    check_aborted_on_the_server(served)


async def test_task_cancel_ends_the_server_request(
    remote_chat: AsyncEngine, served: FuriosaServer
) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in remote_chat.stream(messages=MESSAGES, params=LONG):
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(remote_chat)
    check_aborted_on_the_server(served)


async def test_explicit_abort_ends_the_server_request(
    remote_chat: AsyncEngine, served: FuriosaServer
) -> None:
    reasons: list[str | None] = []
    async for chunk in remote_chat.stream(messages=MESSAGES, params=LONG, request_id="abort-me"):
        if chunk.token_ids and not reasons:
            await remote_chat.abort("abort-me")
        reasons.append(chunk.finish_reason)
    assert reasons[-1] == "abort"
    await wait_idle(remote_chat)
    check_aborted_on_the_server(served)


def test_sync_break_and_langchain_stream_end_the_server_request(
    remote_chat: AsyncEngine, served: FuriosaServer
) -> None:
    for i, _ in enumerate(remote_chat.stream_sync(messages=MESSAGES, params=LONG)):
        if i == 2:
            break
    chat = FuriosaChat(base_url=served.base_url, max_tokens=2000, ignore_eos=True, temperature=0)
    for i, _ in enumerate(chat.stream("Tell me a very long story.")):
        if i == 2:
            break
    wait_idle_sync(remote_chat)
    check_aborted_on_the_server(served, count=2)
