"""FuriosaEmbeddings beyond the standard suite: batching, floats, instructions, similarity."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from furiosa_integrations.engine import AsyncEngine
from furiosa_integrations.langchain import FuriosaEmbeddings


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture
def embeddings(embed_engine: AsyncEngine) -> FuriosaEmbeddings:
    return FuriosaEmbeddings()


def test_one_batched_engine_call_per_request(
    embeddings: FuriosaEmbeddings, embed_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    original = embed_engine.embed_sync

    def spy(texts: list[str], params: Any = None) -> list[list[float]]:
        calls.append(list(texts))
        return original(texts, params)

    monkeypatch.setattr(embed_engine, "embed_sync", spy)
    docs = [f"document number {i}" for i in range(7)]
    vectors = embeddings.embed_documents(docs)
    assert calls == [docs]
    assert len(vectors) == 7
    assert all(type(x) is float for vector in vectors for x in vector)
    assert all(len(vector) == 384 for vector in vectors)
    assert all(math.isclose(_dot(v, v), 1.0, rel_tol=1e-4) for v in vectors)
    assert embeddings.embed_documents([]) == []
    assert calls == [docs]  # an empty request needs no engine call


def test_query_and_document_agree_with_the_engine(
    embeddings: FuriosaEmbeddings, embed_engine: AsyncEngine
) -> None:
    [doc] = embeddings.embed_documents(["RNGD is an NPU made by FuriosaAI."])
    direct = embed_engine.embed_sync(["RNGD is an NPU made by FuriosaAI."])[0]
    assert doc == pytest.approx(direct, abs=1e-5)
    assert embeddings.embed_query("RNGD is an NPU made by FuriosaAI.") == pytest.approx(
        doc, abs=1e-5
    )


def test_similarity_ranks_the_related_text_first(embeddings: FuriosaEmbeddings) -> None:
    docs = [
        "The Eiffel Tower is in Paris.",
        "Bananas are rich in potassium.",
        "Neural processing units accelerate deep learning inference.",
    ]
    vectors = embeddings.embed_documents(docs)
    query = embeddings.embed_query("Which chip speeds up AI models?")
    scores = [_dot(query, v) for v in vectors]
    assert max(range(3), key=scores.__getitem__) == 2


def test_instructions_are_prepended(embed_engine: AsyncEngine) -> None:
    embeddings = FuriosaEmbeddings(query_instruction="query: ", document_instruction="passage: ")
    [expected_query, expected_doc] = embed_engine.embed_sync(["query: cats", "passage: cats"])
    assert embeddings.embed_query("cats") == pytest.approx(expected_query, abs=1e-5)
    assert embeddings.embed_documents(["cats"])[0] == pytest.approx(expected_doc, abs=1e-5)
    assert embeddings.embed_query("cats") != pytest.approx(expected_doc, abs=1e-5)


def test_dimensions_and_explicit_engine(embed_engine: AsyncEngine) -> None:
    embeddings = FuriosaEmbeddings(engine=embed_engine, dimensions=64)
    [vector] = embeddings.embed_documents(["short"])
    assert len(vector) == 64
    assert math.isclose(_dot(vector, vector), 1.0, rel_tol=1e-4)
    assert FuriosaEmbeddings()._get_engine() is embed_engine


async def test_async_requests_are_concurrent_and_match_sync(
    embeddings: FuriosaEmbeddings,
) -> None:
    texts = ["alpha", "beta", "gamma", "delta"]
    results = await asyncio.gather(*(embeddings.aembed_query(t) for t in texts))
    expected = embeddings.embed_documents(texts)
    for got, want in zip(results, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-5)
        assert all(type(x) is float for x in got)
    docs = await embeddings.aembed_documents(texts)
    assert docs[0] == pytest.approx(expected[0], abs=1e-5)
    assert await embeddings.aembed_documents([]) == []
