"""(n) Sampled decoding: one user and a few, as users sample, against llama.cpp.

``single_user`` decodes greedily, as the issue's targets are stated. A user who writes
``FuriosaChat()`` samples (temperature 1, vLLM's and OpenAI's default), a LlamaIndex user at
0.1, and many set ``temperature=0.7, top_p=0.9``. Two pairs, on single_user's cases and
model (the bundled SmolLM2-135M Q4_1 GGUF), EOS ignored:
- each side's defaults: ``FuriosaChat()`` (temperature 1) against ``ChatLlamaCpp`` on its
  own (temperature 0.8, top-p 0.95, top-k 40, repeat penalty 1.1);
- the same options on both: temperature 0.7, top-p 0.9 (llama.cpp's top-k and repeat
  penalty off, as ours are).
No targets: contrast rows for the greedy ones, each ratio against its own pair's llama.cpp.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare
from ..inputs import chat_messages
from .single_user import _threads, gguf_path

SAME = {"temperature": 0.7, "top_p": 0.9}


def furiosa_chat(**sampling: Any) -> Runner:
    """FuriosaChat.abatch with ``sampling`` (none: its defaults), EOS ignored."""
    from furiosa_integrations import FuriosaChat

    chats: dict[int, Any] = {}  # one per length, kept: the engine stays loaded

    def run(case: dict[str, Any]) -> dict[str, float]:
        tokens = case["tokens"]
        if tokens not in chats:
            chats[tokens] = FuriosaChat(max_tokens=tokens, ignore_eos=True, **sampling)
        asyncio.run(chats[tokens].abatch(chat_messages(case["n"])))  # type: ignore[arg-type]
        return {}

    return run


def chat_llama_cpp(path: str, **sampling: Any) -> Runner:
    """ChatLlamaCpp with ``sampling`` (none: its defaults), requests one after another."""
    from langchain_community.chat_models import ChatLlamaCpp

    chat = ChatLlamaCpp(
        model_path=path, n_ctx=2048, n_threads=_threads(), n_batch=512, verbose=False, **sampling
    )
    eos = chat.client.token_eos()

    def run(case: dict[str, Any]) -> dict[str, float]:
        bound = chat.bind(max_tokens=case["tokens"], logit_bias={eos: -1e9})
        for messages in chat_messages(case["n"]):
            bound.invoke(messages)
        return {}

    return run


def run(settings: Settings) -> list[Row]:
    path = gguf_path()
    one = 64 if settings.quick else 128
    cases = [
        (f"one chat x {one} tokens", {"n": 1, "tokens": one}, Metric("rate", "tok/s", work=one)),
        (
            "16 concurrent chats x 64 tokens",
            {"n": 16, "tokens": 64},
            Metric("rate", "tok/s", work=16 * 64),
        ),
    ]
    ours, peer = f"{__name__}:furiosa_chat", f"{__name__}:chat_llama_cpp"
    pairs = [
        [
            Contender("FuriosaChat() (temperature 1)", ours),
            Contender("ChatLlamaCpp (its defaults)", peer, {"path": path}),
        ],
        [
            Contender("FuriosaChat temperature 0.7 top_p 0.9", ours, dict(SAME)),
            Contender(
                "ChatLlamaCpp temperature 0.7 top_p 0.9",
                peer,
                {"path": path, **SAME, "top_k": 0, "repeat_penalty": 1.0},
            ),
        ],
    ]
    rows: list[Row] = []
    for pair in pairs:
        rows += compare(
            "sampling",
            pair,
            cases,
            settings,
            warmup={"n": 1, "tokens": 8},
            repeats=2 if settings.quick else None,
        )
    return rows
