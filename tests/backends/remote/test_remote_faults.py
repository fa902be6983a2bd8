"""Faults: each is a typed error of our hierarchy, and the next request is served.

- a server that is not running, and one killed mid-stream (a real SIGKILL of the victim
  server, which is then started again on the same port);
- HTTP 500, 503 and 429 answers, a stall past the timeout, a malformed line and a cut
  connection, injected in front of furiosa-llm's app (``fault_injection.py``);
- retries happen only where nothing was answered yet, so no output is ever duplicated:
  the server's native engine received each request exactly once.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from furiosa_integrations.engine import AsyncEngine, SamplingParams, get_engine
from furiosa_integrations.errors import (
    EngineError,
    MalformedResponseError,
    ServerAuthenticationError,
    ServerDisconnectedError,
    ServerError,
    ServerOverloadedError,
    ServerTimeoutError,
    ServerUnavailableError,
)
from tests.engine_checks import wait_idle

from .conftest import VICTIM_KEY
from .servers import FuriosaServer

pytestmark = pytest.mark.models

GREEDY = SamplingParams(max_tokens=8, temperature=0.0)
LONG = SamplingParams(max_tokens=2000, temperature=0.0, ignore_eos=True)
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def victim(healthy_victim: FuriosaServer) -> AsyncEngine:
    return get_engine(base_url=healthy_victim.base_url, api_key=VICTIM_KEY)


@pytest.fixture(scope="module")
def solo(remote_chat: AsyncEngine) -> str:
    return remote_chat.generate_sync(messages=MESSAGES, params=GREEDY).text


# ---- the server is not there ----


def test_no_server_is_a_typed_error() -> None:
    with pytest.raises(ServerUnavailableError, match="Cannot reach"):
        get_engine(base_url=f"http://127.0.0.1:{unused_port()}/v1")


async def test_killed_mid_stream_then_down_then_back(
    victim: AsyncEngine, healthy_victim: FuriosaServer, solo: str
) -> None:
    tokens = []
    with pytest.raises(ServerDisconnectedError):
        async for chunk in victim.stream(messages=MESSAGES, params=LONG):
            tokens += chunk.token_ids
            if len(tokens) == 3:
                healthy_victim.kill()
    assert len(tokens) >= 3  # what was delivered stands; nothing is retried
    await wait_idle(victim)
    # Down: refused after the (safe) retries.
    with pytest.raises(ServerUnavailableError):
        await victim.generate(messages=MESSAGES, params=GREEDY)
    healthy_victim.start()
    result = await victim.generate(messages=MESSAGES, params=GREEDY)
    assert result.text == solo
    await wait_idle(victim)


def test_a_wrong_key_is_refused_without_showing_either_key(healthy_victim: FuriosaServer) -> None:
    with pytest.raises(ServerAuthenticationError) as caught:
        get_engine(base_url=healthy_victim.base_url, api_key="sk-wrong-key-123")
    assert caught.value.status_code == 401
    assert "sk-wrong-key-123" not in str(caught.value) and VICTIM_KEY not in str(caught.value)
    with pytest.raises(ServerAuthenticationError):
        get_engine(base_url=healthy_victim.base_url)


# ---- injected faults (the shared server; each fault hits the next request only) ----


async def test_http_500_is_a_server_error_with_its_message(
    remote_chat: AsyncEngine, served: FuriosaServer, solo: str
) -> None:
    served.fault(kind="status", status=500, message="the NPU caught fire")
    with pytest.raises(ServerError, match="the NPU caught fire") as caught:
        await remote_chat.generate(messages=MESSAGES, params=GREEDY)
    assert caught.value.status_code == 500
    assert served.state()["received"] == []  # not retried: a 500 may have done work
    assert (await remote_chat.generate(messages=MESSAGES, params=GREEDY)).text == solo


async def test_503_and_429_are_retried_without_duplicating(
    remote_chat: AsyncEngine, served: FuriosaServer, solo: str
) -> None:
    served.fault(kind="status", status=503, count=1)
    served.fault(kind="status", status=429, count=1, retry_after=0)
    chunks = [c async for c in remote_chat.stream(messages=MESSAGES, params=GREEDY)]
    assert "".join(c.text for c in chunks) == solo
    assert len(served.state()["received"]) == 1  # answered once
    # Past the retries (2 by default): a typed error, and nothing reached the engine.
    served.fault(kind="status", status=429, count=3, retry_after=0)
    with pytest.raises(ServerOverloadedError):
        await remote_chat.generate(messages=MESSAGES, params=GREEDY)
    assert len(served.state()["received"]) == 1
    await wait_idle(remote_chat)


async def test_a_stall_past_the_timeout_is_a_timeout_error(
    furiosa_server: FuriosaServer, served: FuriosaServer, solo: str
) -> None:
    impatient = get_engine(base_url=furiosa_server.base_url, timeout=1.5)
    served.fault(kind="stall", after_events=2, seconds=10)
    tokens = []
    with pytest.raises(ServerTimeoutError) as caught:
        async for chunk in impatient.stream(messages=MESSAGES, params=LONG):
            tokens += chunk.token_ids
    assert isinstance(caught.value, TimeoutError) and len(tokens) == 2
    await wait_idle(impatient)
    state = served.wait_server_idle()  # the server saw us go and aborted the request
    assert len(state["aborted_in_flight"]) == 1
    assert (await impatient.generate(messages=MESSAGES, params=GREEDY)).text == solo


@pytest.mark.parametrize(
    ("kind", "error"),
    [("malformed", MalformedResponseError), ("drop", ServerDisconnectedError)],
)
async def test_a_broken_stream_is_a_typed_error_and_not_retried(
    remote_chat: AsyncEngine,
    served: FuriosaServer,
    solo: str,
    kind: str,
    error: type[EngineError],
) -> None:
    served.fault(kind=kind, after_events=2)
    text = ""
    with pytest.raises(error):
        async for chunk in remote_chat.stream(messages=MESSAGES, params=LONG):
            text += chunk.text
    assert solo.startswith(text) and text  # the part delivered, once
    assert len(served.wait_server_idle()["received"]) == 1
    await wait_idle(remote_chat)
    assert (await remote_chat.generate(messages=MESSAGES, params=GREEDY)).text == solo


async def test_other_requests_are_served_through_a_fault(
    remote_chat: AsyncEngine, served: FuriosaServer, solo: str
) -> None:
    served.fault(kind="malformed", after_events=1)

    async def one() -> str:
        return (await remote_chat.generate(messages=MESSAGES, params=GREEDY)).text

    results = await asyncio.gather(*(one() for _ in range(4)), return_exceptions=True)
    assert sum(isinstance(r, MalformedResponseError) for r in results) == 1
    assert [r for r in results if isinstance(r, str)] == [solo] * 3
    await wait_idle(remote_chat)
