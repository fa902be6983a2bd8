"""Soak: many requests through LangChain's ``FuriosaChat`` and LlamaIndex's ``FuriosaLLM``
at once, with random lengths and 30% of them cancelled at random points.

Cancellation comes in four kinds, in equal shares: breaking out of a stream, cancelling
the consumer's task, an ``asyncio.timeout`` running out, and ``engine.abort`` with the
request's id (LangChain: an id chosen by the caller and passed per call; LlamaIndex: the
id read from the first streamed response's ``raw["request_id"]``). Uncancelled requests
run through ``ainvoke``/``astream``/``achat``/``astream_chat``/``acomplete`` and, from
threads, the sync ``invoke``/``chat`` (through the engine's sync bridge). Backpressure is
on (fewer places than clients), so some cancellations land while a request waits for
admission.

Afterwards:
- nothing is left: no request id, cache slot, running or waiting request, admission
  place or waiter, and no asyncio task on the test's loop or the bridge loop;
- resident memory is within 10% of where it was after a warm-up round of the same mix;
- every request that was not cancelled gave exactly its solo greedy output (text and
  finish reason), computed once per distinct (prompt, max_tokens) pair with nothing else
  running; a cancelled request's partial text is a prefix of it.

The default run is sized for the test suite (``FURIOSA_SOAK_REQUESTS``, default 200,
a few minutes on 2 shared cores). The full soak:

    FURIOSA_SOAK_REQUESTS=2000 .venv/bin/pytest -s tests/core/test_soak.py
    .venv/bin/python -m benchmarks.bench_soak 2000        # the same, with a summary
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psutil
import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole

from furiosa_integrations import FuriosaChat
from furiosa_integrations.core.sync_bridge import bridge_loop, run_sync
from furiosa_integrations.engine import AsyncEngine, SamplingParams
from furiosa_integrations.llama_index import FuriosaLLM
from tests.engine_checks import wait_idle

SOAK_REQUESTS = int(os.environ.get("FURIOSA_SOAK_REQUESTS", "200"))
SOAK_SEED = int(os.environ.get("FURIOSA_SOAK_SEED", "8"))
WARMUP_REQUESTS = min(96, max(48, SOAK_REQUESTS // 10))
CLIENTS = 24  # concurrent callers
MAX_IN_FLIGHT = 16  # backpressure: the other clients wait for admission
CANCEL_SHARE = 0.3
MEMORY_TOLERANCE = 0.10

_FACTS = (
    "The Rhine flows from the Swiss Alps through Germany and the Netherlands into the "
    "North Sea. Barges carry coal, grain and containers along it, and castles stand on "
    "the hills of its middle valley between Bingen and Koblenz. "
)
PROMPTS = [
    "What is the capital of France?",
    "Name three colors.",
    "Say hello in Spanish.",
    "What is 2 + 2?",
    "Write one sentence about cats.",
    "Give me a synonym for happy.",
    "What do bees make?",
    "List two planets.",
    "Explain in one sentence what a neural processing unit is used for.",
    "Describe the smell of rain in a few words.",
    "Summarize this: " + _FACTS,
    "Answer from the text. Which sea does the Rhine flow into? Text: " + _FACTS * 2,
]
LENGTHS = (1, 4, 12)
CANCEL_KINDS = ("break", "task_cancel", "timeout", "abort")
PLAIN_KINDS = ("invoke", "invoke", "stream", "stream", "sync")


@dataclass(frozen=True)
class Job:
    index: int
    framework: str  # "langchain" or "llama_index"
    prompt: int
    max_tokens: int
    kind: str  # one of PLAIN_KINDS or CANCEL_KINDS
    cut: float  # where a cancellation falls, in [0, 1): of the chunks, or of a latency

    def cut_chunks(self) -> int:
        """Cut after this many chunks: at least one, fewer than max_tokens."""
        return 1 + int(self.cut * (self.max_tokens - 1))


@dataclass
class Outcome:
    job: Job
    text: str = ""
    finish_reason: str | None = None
    cancelled: bool = False  # the cancellation took effect (else the request completed)
    chunks: int = 0
    seconds: float = 0.0


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)

    def kinds(self) -> Counter[str]:
        return Counter(o.job.kind for o in self.outcomes if o.cancelled)

    def before_first_chunk(self) -> int:
        """Cancellations that landed before any output (waiting for admission or prefill)."""
        return sum(o.cancelled and o.chunks == 0 for o in self.outcomes)


def make_jobs(count: int, seed: int) -> list[Job]:
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        cancelled = rng.random() < CANCEL_SHARE
        kind = rng.choice(CANCEL_KINDS if cancelled else PLAIN_KINDS)
        jobs.append(
            Job(
                index=i,
                framework=rng.choice(("langchain", "llama_index")),
                prompt=rng.randrange(len(PROMPTS)),
                # A one-token request has no point to cut in the middle of.
                max_tokens=rng.choice(LENGTHS[1:] if cancelled else LENGTHS),
                kind=kind,
                cut=rng.random(),
            )
        )
    return jobs


class Soak:
    """Drives jobs through the two adapters and records what each request gave."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.chat = FuriosaChat(temperature=0)
        self.llm = FuriosaLLM(temperature=0.0)
        self.latency = 1.0  # typical seconds per request; set from the warm-up round

    # ---- one request, by framework ----

    def _lc_stream(self, job: Job, **extra: Any) -> Any:
        return self.chat.astream(PROMPTS[job.prompt], max_tokens=job.max_tokens, **extra)

    async def _li_stream(self, job: Job) -> Any:
        messages = [ChatMessage(role=MessageRole.USER, content=PROMPTS[job.prompt])]
        return await self.llm.astream_chat(messages, max_tokens=job.max_tokens)

    async def _consume(self, job: Job, out: Outcome, stop_after: int | None = None) -> None:
        """Stream ``job`` into ``out``; with ``stop_after``, break out after that many chunks."""
        if job.framework == "langchain":
            async for chunk in self._lc_stream(job):
                out.text += str(chunk.content)
                out.finish_reason = chunk.response_metadata.get("finish_reason", out.finish_reason)
                out.chunks += 1
                if stop_after is not None and out.chunks >= stop_after:
                    out.cancelled = out.finish_reason is None
                    break  # no aclose: the abandoned generator must clean up after itself
        else:
            async for response in await self._li_stream(job):
                out.text = response.message.content or ""
                out.finish_reason = response.raw.get("finish_reason")
                out.chunks += 1
                if stop_after is not None and out.chunks >= stop_after:
                    out.cancelled = out.finish_reason is None
                    break

    async def _complete(self, job: Job, out: Outcome) -> None:
        prompt = PROMPTS[job.prompt]
        if job.framework == "langchain":
            if job.kind == "sync":
                message = await asyncio.to_thread(
                    self.chat.invoke, prompt, max_tokens=job.max_tokens
                )
            else:
                message = await self.chat.ainvoke(prompt, max_tokens=job.max_tokens)
            out.text = str(message.content)
            out.finish_reason = message.response_metadata.get("finish_reason")
            return
        messages = [ChatMessage(role=MessageRole.USER, content=prompt)]
        if job.kind == "sync":
            response = await asyncio.to_thread(self.llm.chat, messages, max_tokens=job.max_tokens)
            out.text, out.finish_reason = (
                response.message.content or "",
                response.raw["finish_reason"],
            )
        elif job.index % 2:
            done = await self.llm.acomplete(prompt, max_tokens=job.max_tokens)
            out.text, out.finish_reason = done.text, done.raw["finish_reason"]
        else:
            response = await self.llm.achat(messages, max_tokens=job.max_tokens)
            out.text, out.finish_reason = (
                response.message.content or "",
                response.raw["finish_reason"],
            )

    async def _abort(self, job: Job, out: Outcome) -> None:
        """Abort by id after a random number of chunks, then read the stream to its end."""
        after = job.cut_chunks()
        if job.framework == "langchain":
            request_id = f"soak-{id(job):x}-{job.index}"
            async for chunk in self._lc_stream(job, request_id=request_id):
                out.text += str(chunk.content)
                out.finish_reason = chunk.response_metadata.get("finish_reason", out.finish_reason)
                out.chunks += 1
                if out.chunks == after and out.finish_reason is None:
                    await self.engine.abort(request_id)
        else:
            async for response in await self._li_stream(job):
                out.text = response.message.content or ""
                out.finish_reason = response.raw.get("finish_reason")
                out.chunks += 1
                if out.chunks == after and out.finish_reason is None:
                    await self.engine.abort(response.raw["request_id"])
        out.cancelled = out.finish_reason == "abort"

    async def run_one(self, job: Job) -> Outcome:
        out = Outcome(job)
        started = time.monotonic()
        if job.kind in ("invoke", "sync"):
            await self._complete(job, out)
        elif job.kind == "stream":
            await self._consume(job, out)
        elif job.kind == "break":
            await self._consume(job, out, stop_after=job.cut_chunks())
        elif job.kind == "abort":
            await self._abort(job, out)
        elif job.kind == "timeout":
            try:
                async with asyncio.timeout(job.cut * self.latency):
                    await self._consume(job, out)
            except TimeoutError:
                out.cancelled = True
        else:  # task_cancel
            task = asyncio.create_task(self._consume(job, out))
            await asyncio.wait({task}, timeout=job.cut * self.latency)
            task.cancel()
            [result] = await asyncio.gather(task, return_exceptions=True)
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
            out.cancelled = isinstance(result, asyncio.CancelledError)
        out.seconds = time.monotonic() - started
        return out

    async def run(self, jobs: list[Job]) -> Tally:
        tally = Tally()
        queue = iter(jobs)

        async def client() -> None:
            for job in queue:
                tally.outcomes.append(await self.run_one(job))

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        return tally


async def solo_outputs(engine: AsyncEngine) -> dict[tuple[int, int], tuple[str, str | None]]:
    """Greedy text and finish reason of each (prompt, max_tokens), one request at a time."""
    solo: dict[tuple[int, int], tuple[str, str | None]] = {}
    for p, prompt in enumerate(PROMPTS):
        for max_tokens in LENGTHS:
            result = await engine.generate(
                messages=[{"role": "user", "content": prompt}],
                params=SamplingParams(max_tokens=max_tokens, temperature=0.0),
            )
            solo[p, max_tokens] = (result.text, result.outputs[0].finish_reason)
    return solo


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


async def settled_tasks(before: set[asyncio.Task[Any]], timeout: float = 10.0) -> set[Any]:
    """Tasks on this loop that were not there before (aborts finish asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        extra = asyncio.all_tasks() - before - {asyncio.current_task()}
        if not extra or time.monotonic() > deadline:
            return extra
        await asyncio.sleep(0.05)


async def _bridge_tasks() -> int:
    return len(asyncio.all_tasks()) - 1  # this coroutine's own task


def check_outputs(
    tally: Tally, solo: dict[tuple[int, int], tuple[str, str | None]]
) -> tuple[int, int]:
    """Every completed request equals its solo output; every cut one is a prefix of it."""
    completed = cancelled = 0
    for out in tally.outcomes:
        expected_text, expected_finish = solo[out.job.prompt, out.job.max_tokens]
        if out.cancelled:
            cancelled += 1
            assert expected_text.startswith(out.text), (out, expected_text)
        else:
            completed += 1
            assert (out.text, out.finish_reason) == (expected_text, expected_finish), (
                out,
                expected_text,
                expected_finish,
            )
    return completed, cancelled


@pytest.mark.timeout(3600)
async def test_soak_through_both_adapters(chat_engine: AsyncEngine) -> None:
    engine = chat_engine
    await wait_idle(engine)
    tasks_before = asyncio.all_tasks()
    soak = Soak(engine)

    t0 = time.monotonic()
    solo = await solo_outputs(engine)
    solo_seconds = time.monotonic() - t0

    engine.set_backpressure(MAX_IN_FLIGHT, "wait")
    try:
        # Warm-up: the same mix, so caches, pools and lazy imports reach their steady size.
        warm = await soak.run(make_jobs(WARMUP_REQUESTS, SOAK_SEED + 1))
        check_outputs(warm, solo)
        plain = [o.seconds for o in warm.outcomes if not o.cancelled]
        soak.latency = statistics.median(plain) if plain else 1.0
        await wait_idle(engine)
        memory_before = rss()

        t1 = time.monotonic()
        tally = await soak.run(make_jobs(SOAK_REQUESTS, SOAK_SEED))
        soak_seconds = time.monotonic() - t1
    finally:
        engine.set_backpressure(None)

    # Nothing left behind.
    await wait_idle(engine, timeout=30)
    stats = engine.stats()
    assert stats.running == stats.waiting == stats.used_cache_slots == stats.request_ids == 0
    assert engine.admission.active == 0 and engine.admission.waiting == 0
    leftover = await settled_tasks(tasks_before)
    assert not leftover, f"tasks left on the test loop: {leftover}"
    assert run_sync(_bridge_tasks()) == 0, "tasks left on the sync bridge loop"
    assert bridge_loop().is_running()

    memory_after = rss()
    completed, cancelled = check_outputs(tally, solo)
    assert len(tally.outcomes) == SOAK_REQUESTS
    print(
        f"\nsoak: {SOAK_REQUESTS} requests in {soak_seconds:.1f}s "
        f"({SOAK_REQUESTS / soak_seconds:.1f} req/s, {CLIENTS} clients, "
        f"{MAX_IN_FLIGHT} in flight); solo references {solo_seconds:.1f}s\n"
        f"soak: completed {completed} (all equal to solo), cancelled {cancelled} "
        f"{dict(tally.kinds())}, {tally.before_first_chunk()} of them before any output; "
        f"planned {sum(o.job.kind in CANCEL_KINDS for o in tally.outcomes)} (the rest "
        f"finished first)\n"
        f"soak: RSS {memory_before / 2**20:.1f} MiB after warm-up, "
        f"{memory_after / 2**20:.1f} MiB after ({(memory_after / memory_before - 1) * 100:+.1f}%)\n"
        f"soak: left behind: {stats}, admission active={engine.admission.active} "
        f"waiting={engine.admission.waiting}, tasks {len(leftover)}"
    )
    assert memory_after <= memory_before * (1 + MEMORY_TOLERANCE), (memory_before, memory_after)
    # The cancellations really happened, of every kind, and mid-request.
    assert set(tally.kinds()) == set(CANCEL_KINDS), tally.kinds()
    assert cancelled >= 0.15 * SOAK_REQUESTS
