"""(l) Multi-turn reuse: the last turn of a conversation and the last step of an agent loop.

Chats and agents re-send the whole history every turn. The torch engine keeps finished
sequences' K/V (``finished_cache_bytes``, 256 MiB by default), so a turn prefills only
what is new. Two FuriosaChat processes that differ only in that option play the same
conversation through ``astream``; the figure is the time to first token of the last
turn. Each run starts a conversation of its own (a fresh first message), so a run never
finds the previous run's turns cached. ``answers_crc32`` is a checksum of every answer
in the run: the same on both sides means the cache changed no output.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import zlib
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare

ON = "FuriosaChat, finished-sequence cache on (default)"
OFF = "FuriosaChat, finished-sequence cache off"
SYSTEM = "You are a patient tutor. Answer in two or three sentences."
DEFINITION = (
    "A short entry from the dictionary: the word names a thing or an idea, is used in "
    "everyday speech and in writing, and has a few related senses listed below it."
)


def lookup(word: str) -> str:
    """Look a word up in the dictionary."""
    return f"{word}: {DEFINITION}"


def furiosa_chat(finished_cache_bytes: int | None) -> Runner:
    from langchain_core.messages import (
        AIMessageChunk,
        BaseMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )

    from furiosa_integrations import FuriosaChat
    from furiosa_integrations.engine import get_engine

    options: dict[str, Any] = (
        {} if finished_cache_bytes is None else {"finished_cache_bytes": finished_cache_bytes}
    )
    engine = get_engine(None, **options)  # handed to every FuriosaChat: the option is the engine's
    native: Any = engine.native
    conversations = itertools.count()

    async def stream(model: Any, messages: list[BaseMessage]) -> tuple[float, AIMessageChunk]:
        start = time.perf_counter()
        ttft = 0.0
        full: AIMessageChunk | None = None
        async for chunk in model.astream(messages):
            if full is None:
                ttft = time.perf_counter() - start
            full = chunk if full is None else full + chunk
        assert full is not None
        return ttft, full

    async def conversation(case: dict[str, Any], nonce: int) -> tuple[float, int, list[str]]:
        chat = FuriosaChat(temperature=0, max_tokens=case["tokens"], engine=engine)
        messages: list[BaseMessage] = [SystemMessage(SYSTEM)]
        answers = []
        ttft = 0.0
        prefill = 0
        for turn in range(case["turns"]):
            messages.append(HumanMessage(f"Tell me fact {turn + 1} about tide pools (#{nonce})."))
            before = native.num_prefill_tokens
            ttft, reply = await stream(chat, messages)
            prefill = native.num_prefill_tokens - before
            answers.append(str(reply.content))
            messages.append(reply)
        return ttft, prefill, answers

    async def agent(case: dict[str, Any], nonce: int) -> tuple[float, int, list[str]]:
        chat = FuriosaChat(temperature=0, max_tokens=case["tokens"], engine=engine)
        model = chat.bind_tools([lookup], tool_choice="any")
        messages: list[BaseMessage] = [
            HumanMessage(f"Look up six words about the sea, one at a time (#{nonce}).")
        ]
        answers = []
        ttft = 0.0
        prefill = 0
        for _ in range(case["steps"]):
            before = native.num_prefill_tokens
            ttft, reply = await stream(model, messages)
            prefill = native.num_prefill_tokens - before
            messages.append(reply)
            # Names and arguments: call ids are random, so they would differ run to run.
            answers.append(repr([(c["name"], c["args"]) for c in reply.tool_calls]))
            for call in reply.tool_calls:
                word = str(call["args"].get("word", ""))
                messages.append(ToolMessage(lookup(word), tool_call_id=call["id"] or ""))
        return ttft, prefill, answers

    def run(case: dict[str, Any]) -> dict[str, float]:
        play = agent if case["kind"] == "agent" else conversation
        ttft, prefill, answers = asyncio.run(play(case, next(conversations)))
        return {
            "ttft_ms": ttft * 1000,
            "last_prefill_tokens": float(prefill),
            "answers_crc32": float(zlib.crc32("\n".join(answers).encode())),
        }

    return run


def run(settings: Settings) -> list[Row]:
    turns, steps = (4, 3) if settings.quick else (10, 6)
    cases = [
        (
            f"{turns}-turn conversation x 32 tokens a turn: last turn",
            {"kind": "conversation", "turns": turns, "tokens": 32},
            Metric("ttft_ms", "ms TTFT", higher_is_better=False),
        ),
        (
            f"{steps}-step tool-calling agent loop: last step",
            {"kind": "agent", "steps": steps, "tokens": 48},
            Metric("ttft_ms", "ms TTFT", higher_is_better=False),
        ),
    ]
    return compare(
        "multi-turn reuse",
        [
            Contender(ON, f"{__name__}:furiosa_chat", {"finished_cache_bytes": None}),
            Contender(OFF, f"{__name__}:furiosa_chat", {"finished_cache_bytes": 0}),
        ],
        cases,
        settings,
        targets={(ON, name): 3.0 for name, _, _ in cases},
        warmup={"kind": "conversation", "turns": 2, "tokens": 4},
        extra_keys=("last_prefill_tokens", "answers_crc32"),
    )
