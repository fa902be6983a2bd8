"""The inputs every workload feeds both sides: chat prompts, lengths, text chunks, a context.

Deterministic (no random state), so every side and every run sees the same work.
"""

from __future__ import annotations

TOPICS = [
    "the sea",
    "a robot",
    "autumn",
    "coffee",
    "a lighthouse",
    "mathematics",
    "a cat",
    "trains",
]

_WORDS = (
    "the model runs on a small accelerator with fast memory and many cores while the host "
    "keeps a queue of requests that arrive from users who ask about weather travel science "
    "history food music sport code data and every other topic under the sun so the engine "
    "must batch them well cache what repeats and answer quickly without wasting work"
).split()


def chat_messages(n: int, ask: str = "Write a short story about") -> list[list[dict[str, str]]]:
    """``n`` one-turn chats, OpenAI-style: "<ask> <topic> (#i)."."""
    return [
        [{"role": "user", "content": f"{ask} {TOPICS[i % len(TOPICS)]} (#{i})."}] for i in range(n)
    ]


def mixed_lengths(n: int, low: int = 16, high: int = 256) -> list[int]:
    """``n`` max_tokens values spread over ``low..high``."""
    return [low + (i * 37) % (high - low + 1) for i in range(n)]


def text(words: int, seed: int) -> str:
    """A sentence-like text of exactly ``words`` words."""
    step = 7 + seed % 11
    return " ".join(_WORDS[(seed * 13 + i * step) % len(_WORDS)] for i in range(words)) + "."


def chunks(n: int, low: int = 20, high: int = 200) -> list[str]:
    """``n`` document chunks of ``low..high`` words, in no particular length order."""
    return [text(low + (i * 53) % (high - low + 1), i) for i in range(n)]


def queries(n: int) -> list[str]:
    return [
        f"What does the engine do with request {i} about {TOPICS[i % len(TOPICS)]}?"
        for i in range(n)
    ]


def rag_context(tokens: int) -> str:
    """A retrieved context of roughly ``tokens`` tokens (about 1.45 tokens per word here)."""
    facts: list[str] = []
    i = 0
    while sum(len(f.split()) for f in facts) * 1.45 < tokens:
        facts.append(
            f"Fact {i}: the code word for item {i} is w{i * 7 % 97} and it is {text(8, i)}"
        )
        i += 1
    return "\n".join(facts)


def rag_messages(n: int, context_tokens: int) -> list[list[dict[str, str]]]:
    """``n`` chats sharing one context in the system message, each with its own question."""
    context = rag_context(context_tokens)
    system = f"Answer from this context only.\n\n{context}"
    return [
        [
            {"role": "system", "content": system},
            {"role": "user", "content": f"What is the code word for item {i}?"},
        ]
        for i in range(n)
    ]
