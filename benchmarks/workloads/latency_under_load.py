"""(c) Latency under load: requests arriving at a steady rate into a busy batch.

First a few long background chats start streaming (the busy batch); once they do, K
short chats arrive one every ``interval`` seconds, each streamed. For each arrival we
take the time to first token (TTFT, from the call to its first chunk) and the gaps
between its later chunks (inter-token latency, ITL). On our side TTFT is also counted in
the native engine's decode steps (``num_steps``); the target is 3 at most.

The peer, ChatHuggingFace(HuggingFacePipeline).stream, has no batching: a user serving
arrivals with it runs them one after another, so its requests queue behind the busy
ones (FIFO, one serving thread).
"""

from __future__ import annotations

import asyncio
import queue
import statistics
import threading
import time
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare
from ..inputs import chat_messages
from ..peers import chat_model_dir

OURS = "FuriosaChat.astream"
PEER = "ChatHuggingFace.stream (FIFO)"


def _summary(ttfts: list[float], gaps: list[float], steps: list[int] | None) -> dict[str, float]:
    ordered = sorted(ttfts)
    out = {
        "ttft_ms": statistics.median(ttfts) * 1000,
        "ttft_p90_ms": ordered[int(0.9 * (len(ordered) - 1))] * 1000,
        "itl_ms": statistics.median(gaps) * 1000 if gaps else float("nan"),
        "itl_p90_ms": sorted(gaps)[int(0.9 * (len(gaps) - 1))] * 1000 if gaps else float("nan"),
    }
    if steps is not None:
        out["ttft_steps_median"] = float(statistics.median(steps))
        out["ttft_steps_max"] = float(max(steps))
    return out


def furiosa_chat() -> Runner:
    from furiosa_integrations import FuriosaChat

    chat = FuriosaChat(temperature=0, ignore_eos=True)

    async def scenario(case: dict[str, Any]) -> dict[str, float]:
        native: Any = chat._get_engine().native
        busy_started = asyncio.Event()
        started = 0

        async def background(messages: Any) -> None:
            nonlocal started
            first = True
            async for _ in chat.astream(messages, max_tokens=case["busy_tokens"]):
                if first:
                    first = False
                    started += 1
                    if started == case["busy"]:
                        busy_started.set()

        busy = [asyncio.create_task(background(m)) for m in chat_messages(case["busy"] + 100)[100:]]
        await busy_started.wait()
        ttfts: list[float] = []
        gaps: list[float] = []
        steps: list[int] = []

        async def arrival(messages: Any) -> None:
            t0 = time.perf_counter()
            steps0 = native.num_steps
            last = None
            async for _ in chat.astream(messages, max_tokens=case["tokens"]):
                now = time.perf_counter()
                if last is None:
                    ttfts.append(now - t0)
                    steps.append(native.num_steps - steps0)
                else:
                    gaps.append(now - last)
                last = now

        arrivals = []
        for messages in chat_messages(case["arrivals"]):
            arrivals.append(asyncio.create_task(arrival(messages)))
            await asyncio.sleep(case["interval"])
        await asyncio.gather(*arrivals)
        for task in busy:
            task.cancel()
        await asyncio.gather(*busy, return_exceptions=True)
        return _summary(ttfts, gaps, steps)

    def run(case: dict[str, Any]) -> dict[str, float]:
        return asyncio.run(scenario(case))

    return run


def chat_huggingface(path: str) -> Runner:
    from ..peers import chat_huggingface as build

    chat = build(path, max_new_tokens=64)

    def run(case: dict[str, Any]) -> dict[str, float]:
        jobs: queue.Queue[tuple[Any, int, float, bool] | None] = queue.Queue()
        ttfts: list[float] = []
        gaps: list[float] = []

        def serve() -> None:  # one request at a time: the pipeline has no batching
            while (job := jobs.get()) is not None:
                messages, tokens, t0, measured = job
                options = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False}
                last = None
                for _ in chat.stream(messages, pipeline_kwargs=options):
                    now = time.perf_counter()
                    if measured:
                        if last is None:
                            ttfts.append(now - t0)
                        else:
                            gaps.append(now - last)
                    last = now

        server = threading.Thread(target=serve)
        server.start()
        for messages in chat_messages(case["busy"] + 100)[100:]:
            jobs.put((messages, case["busy_tokens"], time.perf_counter(), False))
        time.sleep(0.5)  # the first busy request is running
        for messages in chat_messages(case["arrivals"]):
            jobs.put((messages, case["tokens"], time.perf_counter(), True))
            time.sleep(case["interval"])
        jobs.put(None)
        server.join()
        return _summary(ttfts, gaps, None)

    return run


def run(settings: Settings) -> list[Row]:
    if settings.quick:
        case = {"busy": 4, "busy_tokens": 48, "arrivals": 4, "interval": 0.5, "tokens": 16}
    else:
        case = {"busy": 8, "busy_tokens": 128, "arrivals": 8, "interval": 0.5, "tokens": 32}
    name = (
        f"{case['arrivals']} arrivals every {case['interval']}s x {case['tokens']} tokens "
        f"into {case['busy']} busy"
    )
    rows = compare(
        "latency under load",
        [
            Contender(OURS, f"{__name__}:furiosa_chat"),
            Contender(PEER, f"{__name__}:chat_huggingface", {"path": chat_model_dir()}),
        ],
        [(name, case, Metric("ttft_ms", "ms TTFT (median)", higher_is_better=False))],
        settings,
        warmup={"busy": 1, "busy_tokens": 4, "arrivals": 1, "interval": 0.0, "tokens": 2},
        repeats=min(settings.repeats, 2),
        extra_keys=(
            "ttft_p90_ms",
            "itl_ms",
            "itl_p90_ms",
            "ttft_steps_median",
            "ttft_steps_max",
        ),
    )
    ours = next(r for r in rows if r.contender == OURS)
    steps = ours.extra.get("ttft_steps_max")
    if steps is not None:  # the target in decode steps: the worst arrival, median over repeats
        rows.append(
            Row(
                "latency under load",
                name,
                OURS,
                "decode steps to first token (max)",
                [steps],
                False,
                ours.peak_mib,
                limit=3.0,
            )
        )
    return rows
