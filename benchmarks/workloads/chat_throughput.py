"""(a) Chat throughput: N concurrent chats x T tokens each.

FuriosaChat.abatch against ChatHuggingFace(HuggingFacePipeline).batch (what a LangChain
user gets from langchain-huggingface), and against transformers' static batched
``generate`` with all N in one batch (the static-batching ceiling). Greedy, EOS ignored
on every side, so each request makes exactly T tokens.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, also_against, compare
from ..inputs import chat_messages
from ..peers import chat_model_dir

OURS = "FuriosaChat.abatch"
PEER = "ChatHuggingFace.batch"
CEILING = "transformers static generate"


def furiosa_chat(**options: Any) -> Runner:
    """FuriosaChat.abatch, greedy, EOS ignored; ``options`` go to FuriosaChat (``dtype``),
    but ``env``: environment variables set in the worker first (``FURIOSA_GGUF_WEIGHTS``)."""
    os.environ.update(options.pop("env", {}))
    from furiosa_integrations import FuriosaChat

    # One chat model per length, kept for the worker's life: a dropped adapter's lease
    # lets its engine go, and the next case would time a model load (the peers load once).
    chats: dict[int, Any] = {}

    def run(case: dict[str, Any]) -> dict[str, float]:
        tokens = case["tokens"]
        if tokens not in chats:
            chats[tokens] = FuriosaChat(
                temperature=0, max_tokens=tokens, ignore_eos=True, **options
            )
        asyncio.run(chats[tokens].abatch(chat_messages(case["n"])))  # type: ignore[arg-type]
        return {}

    return run


def chat_huggingface(path: str) -> Runner:
    from ..peers import chat_huggingface as build

    chat = build(path, max_new_tokens=64)

    def run(case: dict[str, Any]) -> dict[str, float]:
        tokens = case["tokens"]
        options = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False}
        chat.batch(chat_messages(case["n"]), pipeline_kwargs=options)
        return {}

    return run


def static_generate(path: str) -> Runner:
    from ..peers import StaticGenerate

    model = StaticGenerate(path)

    def run(case: dict[str, Any]) -> dict[str, float]:
        n, tokens = case["n"], case["tokens"]
        model.run(chat_messages(n), [tokens] * n, batch_size=n)
        return {}

    return run


def run(settings: Settings) -> list[Row]:
    sizes, tokens = ((8, 16), 32) if settings.quick else ((16, 64), 64)
    contenders = [
        Contender(OURS, f"{__name__}:furiosa_chat"),
        Contender(PEER, f"{__name__}:chat_huggingface", {"path": chat_model_dir()}),
        Contender(CEILING, f"{__name__}:static_generate", {"path": chat_model_dir()}),
    ]
    cases = [
        (
            f"{n} concurrent x {tokens} tokens",
            {"n": n, "tokens": tokens},
            Metric("rate", "tok/s", work=n * tokens),
        )
        for n in sizes
    ]
    rows = compare(
        "chat throughput",
        contenders,
        cases,
        settings,
        baseline=PEER,
        targets={(OURS, name): 5.0 for name, _, _ in cases},
        warmup={"n": 2, "tokens": 4},
    )
    return rows + also_against(rows, OURS, CEILING, {name: 1.0 for name, _, _ in cases})
