"""(h) Adapter overhead: FuriosaChat.astream against the engine's own ``stream``.

Both run in one process on one shared engine, alternating, with the same concurrent
chats and greedy parameters, so the difference is the LangChain adapter alone (message
conversion, chunk objects, callbacks). Target: the adapter costs at most 5%.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare
from ..inputs import chat_messages

ADAPTER = "FuriosaChat.astream"
ENGINE = "engine.stream"


def both() -> Runner:
    from furiosa_integrations import FuriosaChat
    from furiosa_integrations.engine import SamplingParams, get_engine

    engine = get_engine()
    chat = FuriosaChat(temperature=0, ignore_eos=True)

    async def through_adapter(messages: Any, tokens: int) -> None:
        async for _ in chat.astream(messages, max_tokens=tokens):
            pass

    async def through_engine(messages: Any, tokens: int) -> None:
        params = SamplingParams(temperature=0, max_tokens=tokens, ignore_eos=True)
        async for _ in engine.stream(messages=messages, params=params):
            pass

    def run(case: dict[str, Any]) -> dict[str, float]:
        one = through_adapter if case["contender"] == ADAPTER else through_engine

        async def all_of() -> None:
            await asyncio.gather(*(one(m, case["tokens"]) for m in chat_messages(case["n"])))

        asyncio.run(all_of())
        return {}

    return run


def run(settings: Settings) -> list[Row]:
    n, tokens = (8, 32) if settings.quick else (16, 64)
    case = f"{n} concurrent streams x {tokens} tokens"
    return compare(
        "adapter overhead",
        [
            Contender(ADAPTER, f"{__name__}:both", process="shared"),
            Contender(ENGINE, f"{__name__}:both", process="shared"),
        ],
        [(case, {"n": n, "tokens": tokens}, Metric("rate", "tok/s", work=n * tokens))],
        settings,
        targets={(ADAPTER, case): 0.95},
        # The case itself as warm-up: the first 16-row steps grow the KV cache and let
        # TorchScript profile the new shapes, which would land on whichever side ran first.
        warmup={"n": n, "tokens": tokens},
        repeats=max(settings.repeats, 10),  # a few percent on a noisy host: many samples
    )
