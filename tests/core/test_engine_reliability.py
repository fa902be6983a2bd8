"""Faults, backpressure, dead engines and the sync bridge under pressure."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from furiosa_integrations.backends.torch.generation_engine import TorchGenerationEngine
from furiosa_integrations.engine import (
    AsyncEngine,
    EngineDeadError,
    EngineError,
    EngineOverloadedError,
    SamplingParams,
)
from tests.engine_checks import wait_idle, wait_idle_sync

pytestmark = pytest.mark.models  # every test here loads a model

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = SamplingParams(max_tokens=12, temperature=0.0)
LONG = SamplingParams(max_tokens=400, temperature=0.0, ignore_eos=True)


@pytest.fixture(scope="module")
def spare_engine(chat_engine: AsyncEngine) -> Iterator[AsyncEngine]:
    """A second engine on the same model, which these tests may break or shut down."""
    path = chat_engine.native.model_path  # type: ignore[attr-defined]
    native = TorchGenerationEngine(path)
    engine = AsyncEngine(native, chat_engine.tokenizer, chat_engine.model_name)
    yield engine
    engine.shutdown()


async def test_model_step_exception_fails_that_step_and_engine_keeps_serving(
    chat_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = (await chat_engine.generate(messages=QUESTION, params=GREEDY)).text
    decoder = chat_engine.native.decoder  # type: ignore[attr-defined]
    real_decode = decoder.decode
    calls = 0

    def flaky_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("simulated kernel fault")
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(decoder, "decode", flaky_decode)
    with pytest.raises(EngineError, match="simulated kernel fault"):
        await chat_engine.generate(messages=QUESTION, params=LONG)
    await wait_idle(chat_engine)
    # The next request is served normally and gives the same answer as before.
    assert (await chat_engine.generate(messages=QUESTION, params=GREEDY)).text == expected
    await wait_idle(chat_engine)


async def test_backpressure_wait(chat_engine: AsyncEngine) -> None:
    chat_engine.set_backpressure(2, "wait")
    try:
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, chat_engine.stats().running)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        params = SamplingParams(max_tokens=8, temperature=0)
        results = await asyncio.gather(
            *(chat_engine.generate(messages=QUESTION, params=params) for _ in range(6))
        )
        watcher.cancel()
        assert len({r.text for r in results}) == 1 and "Paris" in results[0].text
        assert 1 <= peak <= 2
        assert chat_engine.admission.active == 0 and chat_engine.admission.waiting == 0
    finally:
        chat_engine.set_backpressure(None)


async def test_backpressure_wait_cancelled_waiter_frees_nothing_twice(
    chat_engine: AsyncEngine,
) -> None:
    chat_engine.set_backpressure(1, "wait")
    try:
        first = asyncio.create_task(chat_engine.generate(messages=QUESTION, params=LONG))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(chat_engine.generate(messages=QUESTION, params=GREEDY))
        await asyncio.sleep(0.05)
        assert chat_engine.admission.waiting == 1
        second.cancel()
        first.cancel()
        await asyncio.gather(first, second, return_exceptions=True)
        assert chat_engine.admission.active == 0 and chat_engine.admission.waiting == 0
        await wait_idle(chat_engine)
    finally:
        chat_engine.set_backpressure(None)


async def test_backpressure_error(chat_engine: AsyncEngine) -> None:
    chat_engine.set_backpressure(1, "error")
    try:
        chunks = chat_engine.stream(messages=QUESTION, params=LONG)
        await chunks.__anext__()  # now one request is in flight
        with pytest.raises(EngineOverloadedError):
            chat_engine.stream(messages=QUESTION, params=GREEDY)
        await chunks.aclose()  # type: ignore[attr-defined]
        result = await chat_engine.generate(messages=QUESTION, params=GREEDY)
        assert "Paris" in result.text
    finally:
        chat_engine.set_backpressure(None)
    await wait_idle(chat_engine)


def test_backpressure_settings_are_checked(chat_engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="max_pending_requests"):
        chat_engine.set_backpressure(0)
    with pytest.raises(ValueError, match="when_full"):
        chat_engine.set_backpressure(3, "drop")  # type: ignore[arg-type]


async def test_never_iterated_stream_holds_nothing(chat_engine: AsyncEngine) -> None:
    stream = chat_engine.stream(messages=QUESTION, params=GREEDY, request_id="never")
    del stream
    assert chat_engine.stats().request_ids == 0
    result = await chat_engine.generate(messages=QUESTION, params=GREEDY, request_id="never")
    assert "Paris" in result.text


def test_sync_bridge_from_16_threads(chat_engine: AsyncEngine) -> None:
    expected = chat_engine.generate_sync(messages=QUESTION, params=GREEDY).text
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(chat_engine.generate_sync(messages=QUESTION, params=GREEDY).text)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a sync call deadlocked"
    assert not errors and results == [expected] * 16
    wait_idle_sync(chat_engine)


async def test_sync_bridge_inside_running_event_loop(chat_engine: AsyncEngine) -> None:
    # A notebook cell: sync API called while an event loop runs on this thread.
    asyncio.get_running_loop()
    result = chat_engine.generate_sync(messages=QUESTION, params=GREEDY)
    assert "Paris" in result.text
    text = "".join(c.text for c in chat_engine.stream_sync(messages=QUESTION, params=GREEDY))
    assert text == result.text


async def test_shutdown_with_requests_in_flight(spare_engine: AsyncEngine) -> None:
    chunks: list[Any] = []

    async def consume() -> None:
        async for chunk in spare_engine.stream(messages=QUESTION, params=LONG):
            chunks.append(chunk)

    tasks = [asyncio.create_task(consume()) for _ in range(3)]
    while len(chunks) < 6:
        await asyncio.sleep(0.01)
    spare_engine.shutdown()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=30)
    assert all(isinstance(r, EngineDeadError) for r in results), results
    assert "shut down" in str(results[0])
    assert not spare_engine.is_alive()
    with pytest.raises(EngineDeadError):
        spare_engine.stream(messages=QUESTION, params=GREEDY)


async def test_crashed_engine_thread_says_so(
    chat_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = chat_engine.native.model_path  # type: ignore[attr-defined]
    native = TorchGenerationEngine(path)
    engine = AsyncEngine(native, chat_engine.tokenizer, chat_engine.model_name)
    try:

        def broken_admit() -> Any:
            raise SystemError("scheduler bug")

        monkeypatch.setattr(native, "_admit", broken_admit)
        with pytest.raises(EngineDeadError, match="scheduler bug"):
            await asyncio.wait_for(engine.generate(messages=QUESTION, params=GREEDY), timeout=30)
        assert not engine.is_alive()
        with pytest.raises(EngineDeadError, match="crashed"):
            engine.stream(messages=QUESTION, params=GREEDY)
    finally:
        engine.shutdown()


def test_a_process_that_used_the_engines_exits_cleanly() -> None:
    """Engines are shut down at exit: a process that embedded a big batch and chatted,
    then simply ended, exits with status 0 (it used to abort now and then with
    "terminate called without an active exception" while the engine threads lived on)."""
    code = (
        "import asyncio\n"
        "from furiosa_integrations.engine import SamplingParams, get_engine\n"
        "docs = [' '.join(['word'] * (3 + i % 150)) for i in range(200)]\n"
        "embed = get_engine(task='embed')\n"
        "async def main():\n"
        "    for _ in range(3):\n"
        "        await embed.embed(docs)\n"
        "asyncio.run(main())\n"
        "get_engine().generate_sync('hi', params=SamplingParams(max_tokens=2))\n"
        "print('END')\n"
    )
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0 and "END" in result.stdout, result.stderr[-2000:]
        assert "terminate called" not in result.stderr
