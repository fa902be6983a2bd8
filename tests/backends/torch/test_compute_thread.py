"""Every torch engine loads and steps on the one shared compute thread (one OpenMP team in
the process); a crashing engine dies alone; the thread ends with its last engine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from furiosa_integrations.backends.torch import engine_thread, generation_engine
from furiosa_integrations.backends.torch.engine_thread import ComputeThread
from furiosa_integrations.backends.torch.generation_engine import TorchGenerationEngine
from furiosa_integrations.engine import AsyncEngine, SamplingParams
from furiosa_integrations.errors import EngineDeadError
from furiosa_integrations.models.tokenizer import load_tokenizer
from tests.backends.torch import tiny_models

pytestmark = pytest.mark.models

GREEDY = SamplingParams(max_tokens=4, temperature=0, ignore_eos=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.build("llama", tmp_path_factory.mktemp("llama"))


def _engine(path: Path) -> AsyncEngine:
    return AsyncEngine(TorchGenerationEngine(path), load_tokenizer(path), "tiny")


async def test_engines_load_and_step_on_one_compute_thread(
    tiny: Path, embed_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded_on: list[str] = []
    real = generation_engine.load_decoder

    def recording(*args: Any, **kwargs: Any) -> Any:
        loaded_on.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(generation_engine, "load_decoder", recording)
    engine = _engine(tiny)
    try:
        native: Any = engine.native
        assert loaded_on == ["furiosa-torch"]  # not the caller's thread
        assert native._compute is embed_engine.native._compute  # type: ignore[attr-defined]
        assert native._compute is ComputeThread.shared()
        # Both engines busy at once, interleaved on that thread: both answer.
        text, vectors = await asyncio.gather(
            engine.generate([5, 6, 7], params=GREEDY),
            embed_engine.embed(["a first sentence", "and a second one"]),
        )
        assert len(text.outputs[0].token_ids) == 4 and len(vectors) == 2
    finally:
        engine.shutdown()


async def test_a_crashing_engine_dies_alone(
    tiny: Path, chat_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tiny)
    try:

        def broken_admit() -> Any:
            raise SystemError("scheduler bug")

        monkeypatch.setattr(engine.native, "_admit", broken_admit)
        with pytest.raises(EngineDeadError, match="scheduler bug"):
            await asyncio.wait_for(engine.generate([5, 6], params=GREEDY), timeout=30)
        assert not engine.is_alive()
        other = await chat_engine.generate([5, 6, 7], params=GREEDY)
        assert len(other.outputs[0].token_ids) == 4 and chat_engine.is_alive()
    finally:
        engine.shutdown()


def test_the_compute_thread_ends_with_its_last_engine(tiny: Path) -> None:
    """In a fresh process: after its only engine shuts down, no compute thread is left
    (nor its OpenMP team); a new engine gets a new thread and serves."""
    code = (
        "import threading, sys\n"
        "from furiosa_integrations.backends.torch.generation_engine import TorchGenerationEngine\n"
        "def alive():\n"
        "    return [t for t in threading.enumerate() if t.name == 'furiosa-torch']\n"
        "first = TorchGenerationEngine(sys.argv[1])\n"
        "assert len(alive()) == 1\n"
        "first.shutdown()\n"
        "assert alive() == [], alive()\n"
        "second = TorchGenerationEngine(sys.argv[1])\n"
        "assert second.is_alive() and len(alive()) == 1\n"
        "second.shutdown()\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tiny)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


async def test_shutdown_from_inside_a_step_waits_for_the_step(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shutdown that runs on the compute thread mid-step (an adapter's finalizer collected
    there) takes effect after that step: the step finishes, then its requests fail."""
    engine = _engine(tiny)
    native: Any = engine.native
    real = native._decode

    def decode_then_stop(batch: Any) -> None:
        native.shutdown()
        real(batch)

    monkeypatch.setattr(native, "_decode", decode_then_stop)
    with pytest.raises(EngineDeadError, match="shut down"):
        await asyncio.wait_for(engine.generate([5, 6], params=GREEDY), timeout=30)
    assert not engine.is_alive()


async def test_background_work_runs_in_pieces_between_steps(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Work a load leaves for later (the move into huge pages) runs a piece at a time once
    the engine has stepped (not while the first request waits for its reply): when the
    thread is idle, and every ``BACKGROUND_EVERY`` rounds while an engine is busy, so
    requests are served meanwhile; a piece that raises ends that work, not the engine."""
    pieces: list[int] = []  # the engine's decode steps so far, at each piece
    failing = threading.Event()

    def piece(self: TorchGenerationEngine) -> bool:
        pieces.append(self.num_steps)
        if failing.is_set():
            raise OSError("the mapping went away")
        time.sleep(0.001)
        return True

    monkeypatch.setattr(TorchGenerationEngine, "background_work", piece)
    engine = _engine(tiny)
    try:
        await asyncio.sleep(0.1)
        assert pieces == []  # loaded and idle, but not stepped yet
        params = SamplingParams(max_tokens=24, temperature=0, ignore_eos=True)
        out = await asyncio.wait_for(engine.generate([5, 6, 7], params=params), timeout=60)
        assert len(out.outputs[0].token_ids) == 24
        # while the request ran: a piece every few steps, not one a step
        during = [steps for steps in pieces if 0 < steps < 23]
        assert during and len(during) <= 23 // engine_thread.BACKGROUND_EVERY + 1
        idle = len(pieces)
        await asyncio.sleep(0.1)
        assert len(pieces) > idle + 10  # idle: the pieces run one after another
        failing.set()
        await asyncio.sleep(0.1)
        ended = len(pieces)
        again = await asyncio.wait_for(engine.generate([5, 6], params=GREEDY), timeout=30)
        assert len(again.outputs[0].token_ids) == 4 and engine.is_alive()
        await asyncio.sleep(0.1)
        assert len(pieces) == ended  # the raise ended the work: no more pieces
    finally:
        engine.shutdown()
