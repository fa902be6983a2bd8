"""(d) RAG prefix reuse: N chats sharing one long retrieved context, each its own question.

The same FuriosaChat.abatch call on two engines that differ only in
``enable_prefix_caching``. With it on, the context's K/V is computed once and copied to
every other request; with it off, every request computes the whole prompt.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare
from ..inputs import rag_messages

ON = "FuriosaChat, prefix caching on"
OFF = "FuriosaChat, prefix caching off"


def furiosa_chat(prefix_caching: bool) -> Runner:
    from furiosa_integrations import FuriosaChat
    from furiosa_integrations.engine import get_engine

    # Handed to every FuriosaChat: the option is the engine's, and FuriosaChat() alone
    # would get the default engine (prefix caching on) on both sides.
    engine = get_engine(None, enable_prefix_caching=prefix_caching)
    native: Any = engine.native

    def run(case: dict[str, Any]) -> dict[str, float]:
        chat = FuriosaChat(temperature=0, max_tokens=case["tokens"], ignore_eos=True, engine=engine)
        before = native.num_prefill_tokens
        asyncio.run(chat.abatch(rag_messages(case["n"], case["context"])))  # type: ignore[arg-type]
        return {"prefill_tokens": float(native.num_prefill_tokens - before)}

    return run


def run(settings: Settings) -> list[Row]:
    n = 8 if settings.quick else 32
    case = {"n": n, "context": 1000, "tokens": 16}
    name = f"{n} requests sharing a 1000-token context, 16 tokens each"
    return compare(
        "RAG prefix reuse",
        [
            Contender(ON, f"{__name__}:furiosa_chat", {"prefix_caching": True}),
            Contender(OFF, f"{__name__}:furiosa_chat", {"prefix_caching": False}),
        ],
        [(name, case, Metric("seconds", "s", higher_is_better=False))],
        settings,
        targets={(ON, name): 3.0},
        warmup={"n": 2, "context": 100, "tokens": 2},
        extra_keys=("prefill_tokens",),
    )
