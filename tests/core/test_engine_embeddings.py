"""Pooling on the real default embedding model (all-MiniLM-L6-v2)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from furiosa_integrations.engine import AsyncEngine, PoolingParams
from tests.engine_checks import batch_tolerance, wait_idle

DOCS = [
    "Paris is the capital of France.",
    "The mitochondria is the powerhouse of the cell.",
    "RNGD is an NPU made by FuriosaAI for LLM inference.",
    "a",
    "Photosynthesis turns light into chemical energy. " * 20,
]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


async def test_dimensions_and_unit_norm(embed_engine: AsyncEngine) -> None:
    vectors = await embed_engine.embed(DOCS)
    assert len(vectors) == len(DOCS)
    for v in vectors:
        assert len(v) == 384 and all(isinstance(x, float) for x in v)
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5)


async def test_batch_equals_one_by_one(embed_engine: AsyncEngine) -> None:
    batch = await embed_engine.embed(DOCS)
    tolerance = batch_tolerance(embed_engine)
    for doc, vector in zip(DOCS, batch, strict=True):
        (alone,) = await embed_engine.embed([doc])
        assert max(abs(x - y) for x, y in zip(alone, vector, strict=True)) < tolerance


async def test_concurrent_calls_are_micro_batched(embed_engine: AsyncEngine) -> None:
    native: Any = embed_engine.native
    before = native.num_batches
    results = await asyncio.gather(*(embed_engine.embed([f"query number {i}"]) for i in range(50)))
    assert len(results) == 50
    assert native.num_batches - before < 25  # far fewer forward passes than calls
    (single,) = await embed_engine.embed(["query number 7"])
    difference = max(abs(x - y) for x, y in zip(single, results[7][0], strict=True))
    assert difference < batch_tolerance(embed_engine)
    await wait_idle(embed_engine)


async def test_semantics(embed_engine: AsyncEngine) -> None:
    query, close, far = await embed_engine.embed(
        ["What is the capital city of France?", DOCS[0], DOCS[1]]
    )
    assert cosine(query, close) > cosine(query, far) + 0.2


async def test_dimensions_normalize_truncation(embed_engine: AsyncEngine) -> None:
    (short,) = await embed_engine.embed([DOCS[0]], PoolingParams(dimensions=64))
    assert len(short) == 64
    assert math.isclose(math.sqrt(sum(x * x for x in short)), 1.0, rel_tol=1e-5)
    (raw,) = await embed_engine.embed([DOCS[0]], PoolingParams(normalize=False))
    assert not math.isclose(math.sqrt(sum(x * x for x in raw)), 1.0, rel_tol=1e-3)
    long_text = "word " * 2000
    (truncated,) = await embed_engine.embed([long_text])  # default: truncate to the model limit
    assert len(truncated) == 384
    (tight,) = await embed_engine.embed([long_text], PoolingParams(truncate_prompt_tokens=16))
    (prefix,) = await embed_engine.embed(["word " * 14])  # 14 words + [CLS] + [SEP] = 16 tokens
    assert max(abs(x - y) for x, y in zip(tight, prefix, strict=True)) < 1e-4


def test_sync_embed(embed_engine: AsyncEngine) -> None:
    (vector,) = embed_engine.embed_sync(["hello"])
    assert len(vector) == 384
