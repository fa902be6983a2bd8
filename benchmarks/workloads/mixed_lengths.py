"""(b) Mixed lengths: N concurrent chats whose max_tokens spread over 16..256.

Static batching runs every row to the batch's longest request; continuous batching frees
a row the moment it is done and fills it with the next request. FuriosaChat (one
``ainvoke`` per request, all concurrent) against transformers' static batched
``generate`` (all N in one batch). Throughput counts only the tokens each request asked
for; EOS is ignored on both sides.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare
from ..inputs import chat_messages, mixed_lengths
from ..peers import chat_model_dir

OURS = "FuriosaChat (concurrent ainvoke)"
CEILING = "transformers static generate"


def furiosa_chat() -> Runner:
    from furiosa_integrations import FuriosaChat

    chat = FuriosaChat(temperature=0, ignore_eos=True)

    async def all_of(case: dict[str, Any]) -> None:
        lengths = mixed_lengths(case["n"], case["low"], case["high"])
        messages = chat_messages(case["n"])
        await asyncio.gather(
            *(chat.ainvoke(m, max_tokens=t) for m, t in zip(messages, lengths, strict=True))  # type: ignore[arg-type]
        )

    def run(case: dict[str, Any]) -> dict[str, float]:
        asyncio.run(all_of(case))
        return {}

    return run


def static_generate(path: str) -> Runner:
    from ..peers import StaticGenerate

    model = StaticGenerate(path)

    def run(case: dict[str, Any]) -> dict[str, float]:
        n = case["n"]
        model.run(chat_messages(n), mixed_lengths(n, case["low"], case["high"]), batch_size=n)
        return {}

    return run


def compare_sizes(settings: Settings, sizes: list[int], low: int, high: int) -> list[Row]:
    """One case per concurrency in ``sizes``, max_tokens spread over ``low..high``."""
    cases = [
        (
            f"{n} concurrent, max_tokens {low}..{high}",
            {"n": n, "low": low, "high": high},
            Metric("rate", "tok/s", work=sum(mixed_lengths(n, low, high))),
        )
        for n in sizes
    ]
    return compare(
        "mixed lengths",
        [
            Contender(OURS, f"{__name__}:furiosa_chat"),
            Contender(CEILING, f"{__name__}:static_generate", {"path": chat_model_dir()}),
        ],
        cases,
        settings,
        targets={(OURS, name): 1.3 for name, _, _ in cases},
        warmup={"n": 2, "low": 4, "high": 8},
    )


def run(settings: Settings) -> list[Row]:
    n, low, high = (16, 16, 128) if settings.quick else (32, 16, 256)
    return compare_sizes(settings, [n], low, high)
