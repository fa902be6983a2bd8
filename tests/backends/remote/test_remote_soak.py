"""The soak (``tests/core/test_soak.py``) against the served backend, with the server
killed (SIGKILL) and started again once, mid-soak.

The same mix through LangChain's FuriosaChat and LlamaIndex's FuriosaLLM, now with
``base_url``: random lengths, 30% cancelled (break, task cancel, timeout, abort by id),
sync callers through the bridge, backpressure on. Afterwards every request either gave
exactly its solo greedy output (or, cancelled, a prefix of it) or ended with a typed
error of our hierarchy; each was answered once; nothing is left in flight here (ids,
streams, admission places, tasks) or on the server (its native engine and ``/metrics``).

Default size for the test suite (``FURIOSA_REMOTE_SOAK_REQUESTS``, default 60); the full
one: ``.venv/bin/python -m benchmarks.bench_soak --served 2000``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter

import pytest

from furiosa_integrations import FuriosaChat
from furiosa_integrations.core.sync_bridge import run_sync
from furiosa_integrations.engine import AsyncEngine, get_engine
from furiosa_integrations.errors import FuriosaError
from furiosa_integrations.llama_index import FuriosaLLM
from tests.core.test_soak import (
    CANCEL_KINDS,
    MAX_IN_FLIGHT,
    SOAK_SEED,
    Job,
    Outcome,
    Soak,
    Tally,
    _bridge_tasks,
    check_outputs,
    make_jobs,
    settled_tasks,
    solo_outputs,
)
from tests.engine_checks import wait_idle

from .conftest import VICTIM_KEY
from .servers import FuriosaServer

pytestmark = pytest.mark.models

SOAK_REQUESTS = int(os.environ.get("FURIOSA_REMOTE_SOAK_REQUESTS", "60"))
KILL_AT = 0.3  # share of the requests done when the server is killed
# Connection refused is safe to retry; with 6 retries (0.5 + 1 + 2 + 4 + 8 + 8 s of backoff) a
# request that starts while the server is down waits for it to come back (10-20 s here).
RETRIES = 6


class ServedSoak(Soak):
    """The soak's jobs through adapters with ``base_url``; a typed error is an outcome."""

    def __init__(self, engine: AsyncEngine, server: FuriosaServer) -> None:
        super().__init__(engine)
        served = {"base_url": server.base_url, "api_key": VICTIM_KEY, "max_retries": RETRIES}
        self.chat = FuriosaChat(**served, temperature=0)
        self.llm = FuriosaLLM(**served, temperature=0.0)
        self.errors: dict[int, FuriosaError] = {}
        self.done = 0

    async def run_one(self, job: Job) -> Outcome:
        try:
            return await super().run_one(job)
        except FuriosaError as exc:
            self.errors[job.index] = exc
            return Outcome(job, cancelled=True)  # not compared: it did not complete
        finally:
            self.done += 1


async def kill_and_restart(soak: ServedSoak, server: FuriosaServer, at: int) -> float:
    """Kill the server once ``at`` requests are done, start it again; seconds it was down."""
    while soak.done < at:
        await asyncio.sleep(0.05)
    down = time.monotonic()
    await asyncio.to_thread(server.kill)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(server.start)
    return time.monotonic() - down


@pytest.mark.timeout(1800)
async def test_soak_over_the_served_backend_with_a_restart(healthy_victim: FuriosaServer) -> None:
    engine = get_engine(base_url=healthy_victim.base_url, api_key=VICTIM_KEY, max_retries=RETRIES)
    soak = ServedSoak(engine, healthy_victim)
    assert soak.chat._get_engine() is engine and soak.llm._get_engine() is engine  # shared
    tasks_before = asyncio.all_tasks()

    t0 = time.monotonic()
    solo = await solo_outputs(engine)
    soak.latency = 3 * (time.monotonic() - t0) / len(solo)  # cut points for timeouts/cancels

    engine.set_backpressure(MAX_IN_FLIGHT, "wait")
    try:
        jobs = make_jobs(SOAK_REQUESTS, SOAK_SEED)
        restart = asyncio.create_task(
            kill_and_restart(soak, healthy_victim, int(KILL_AT * SOAK_REQUESTS))
        )
        t1 = time.monotonic()
        tally = await soak.run(jobs)
        soak_seconds = time.monotonic() - t1
        downtime = await restart
    finally:
        engine.set_backpressure(None)

    # Each request answered once: one outcome per job; completed ones equal solo.
    assert sorted(o.job.index for o in tally.outcomes) == list(range(SOAK_REQUESTS))
    compared = Tally([o for o in tally.outcomes if o.job.index not in soak.errors])
    completed, cancelled = check_outputs(compared, solo)
    errors = Counter(type(e).__name__ for e in soak.errors.values())
    examples = Counter(f"{type(e).__name__}: {e}" for e in soak.errors.values())

    # Nothing left behind, here and on the server.
    await wait_idle(engine, timeout=30)
    assert engine.admission.active == 0 and engine.admission.waiting == 0
    assert not await settled_tasks(tasks_before), "tasks left on the test loop"
    assert run_sync(_bridge_tasks()) == 0, "tasks left on the sync bridge loop"
    healthy_victim.wait_server_idle(timeout=30)
    assert healthy_victim.metric("furiosa_llm_num_requests_running") == 0

    plain = [o.seconds for o in compared.outcomes if not o.cancelled]
    print(
        f"\nserved soak: {SOAK_REQUESTS} requests in {soak_seconds:.1f}s, server down "
        f"{downtime:.1f}s; completed {completed} (all equal to solo), cancelled {cancelled} "
        f"{dict(compared.kinds())}, typed errors {dict(errors)}; median latency "
        f"{statistics.median(plain) if plain else 0:.2f}s\n"
        + "\n".join(f"served soak: {n} x {text}" for text, n in examples.most_common())
    )
    # The kill cut the requests in flight (nothing retried them: their tokens had been
    # delivered); those sent while it was down waited for it and completed.
    assert errors and set(errors) <= {"ServerDisconnectedError", "ServerUnavailableError"}
    assert completed >= SOAK_REQUESTS // 5
    assert {k for k in compared.kinds()} & set(CANCEL_KINDS)
