"""FuriosaEmbedding on the real default model: query, text and batch, sync and async,
embed_batch_size, and concurrent async calls batched by the engine."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from furiosa_integrations.engine import AsyncEngine
from furiosa_integrations.llama_index import FuriosaEmbedding
from tests.engine_checks import batch_tolerance

TEXTS = [
    "The cat sat on the mat.",
    "A kitten was sitting on a rug.",
    "Stock markets fell sharply on Monday.",
]


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_defaults_and_shared_engine(
    embed_model: FuriosaEmbedding, embed_engine: AsyncEngine
) -> None:
    assert embed_model.engine is embed_engine
    assert embed_model.model_name == "all-MiniLM-L6-v2"
    assert embed_model.class_name() == "FuriosaEmbedding"
    assert embed_model.embed_batch_size == 32


def test_sync_query_text_and_batch(embed_model: FuriosaEmbedding) -> None:
    query = embed_model.get_query_embedding("Where is the cat?")
    assert len(query) == 384 and all(isinstance(x, float) for x in query)
    assert math.isclose(math.sqrt(sum(x * x for x in query)), 1.0, rel_tol=1e-4)
    text = embed_model.get_text_embedding(TEXTS[0])
    batch = embed_model.get_text_embedding_batch(TEXTS)
    assert len(batch) == 3
    assert embed_model.engine is not None
    assert batch[0] == pytest.approx(text, abs=batch_tolerance(embed_model.engine))
    # meaning, not just shape: the paraphrase is closer than the unrelated sentence
    assert _cosine(batch[0], batch[1]) > _cosine(batch[0], batch[2]) + 0.3


async def test_async_matches_sync(embed_model: FuriosaEmbedding) -> None:
    sync_batch = embed_model.get_text_embedding_batch(TEXTS)
    async_batch = await embed_model.aget_text_embedding_batch(TEXTS)
    for got, want in zip(async_batch, sync_batch, strict=True):
        assert got == pytest.approx(want, abs=1e-5)
    alone = await embed_model.aget_text_embedding(TEXTS[1])
    assert embed_model.engine is not None
    assert alone == pytest.approx(sync_batch[1], abs=batch_tolerance(embed_model.engine))
    sync_query = embed_model.get_query_embedding("a cat")
    assert await embed_model.aget_query_embedding("a cat") == pytest.approx(sync_query, abs=1e-5)


@pytest.mark.parametrize("use_async", [False, True])
async def test_embed_batch_size_is_one_engine_call_per_batch(
    embed_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, use_async: bool
) -> None:
    sizes: list[int] = []
    real_embed = embed_engine.embed

    async def counting_embed(texts: Any, params: Any = None, request_id: Any = None) -> Any:
        sizes.append(len(texts))
        return await real_embed(texts, params, request_id)

    monkeypatch.setattr(embed_engine, "embed", counting_embed)
    model = FuriosaEmbedding(embed_batch_size=4)
    texts = [f"sentence number {i}" for i in range(10)]
    if use_async:
        vectors = await model.aget_text_embedding_batch(texts)
    else:
        vectors = await asyncio.to_thread(model.get_text_embedding_batch, texts)
    assert len(vectors) == 10
    assert sizes == [4, 4, 2]


async def test_concurrent_async_calls_share_engine_batches(
    embed_model: FuriosaEmbedding, embed_engine: AsyncEngine
) -> None:
    queries = [f"question {i} about cats and dogs" for i in range(48)]
    alone = embed_model.get_query_embedding(queries[5])
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    tick_task = asyncio.create_task(ticker())
    before = embed_engine.native.num_batches  # type: ignore[attr-defined]
    start = time.perf_counter()
    vectors = await asyncio.gather(*(embed_model.aget_query_embedding(q) for q in queries))
    elapsed = time.perf_counter() - start
    tick_task.cancel()
    forward_passes = embed_engine.native.num_batches - before  # type: ignore[attr-defined]
    assert len(vectors) == 48
    assert vectors[5] == pytest.approx(alone, abs=batch_tolerance(embed_engine))
    # 48 concurrent queries were merged into a few forward passes by the engine ...
    assert forward_passes <= 8, forward_passes
    # ... while the event loop stayed free (no blocking call, no executor).
    assert ticks >= 2 or elapsed < 0.02
