"""``FuriosaRerank`` as a LangChain document compressor: a RAG chain whose retriever is a
``ContextualCompressionRetriever`` over the embedding store, reranked by a cross-encoder
(a tiny random-weight one: the scores are checked against sentence-transformers', not
for meaning)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from furiosa_integrations.engine import AsyncEngine
from furiosa_integrations.langchain import FuriosaChat, FuriosaEmbeddings, FuriosaRerank
from tests.langchain.test_pipelines import DOCUMENTS, RAG_PROMPT, _join

QUESTION = "How long does the ferry crossing take?"


def _expected(model: Path, query: str, texts: list[str]) -> list[float]:
    from sentence_transformers import CrossEncoder

    scores = CrossEncoder(str(model), device="cpu").predict([(query, t) for t in texts])
    return [float(s) for s in scores]


def test_rag_chain_with_a_contextual_compression_retriever(
    chat_engine: AsyncEngine, embed_engine: AsyncEngine, cross_encoder_dir: Path
) -> None:
    retrievers = pytest.importorskip("langchain_classic.retrievers")
    store = InMemoryVectorStore.from_documents(DOCUMENTS, FuriosaEmbeddings())
    reranker = FuriosaRerank(model=str(cross_encoder_dir), top_n=2, dtype="float32")
    retriever = retrievers.ContextualCompressionRetriever(
        base_compressor=reranker, base_retriever=store.as_retriever(search_kwargs={"k": 3})
    )
    chat = FuriosaChat(temperature=0, max_tokens=24)
    chain = RunnableParallel(
        context=retriever, question=RunnablePassthrough()
    ).assign(answer=(lambda x: {"context": _join(x["context"]), "question": x["question"]})
             | RAG_PROMPT | chat | StrOutputParser())  # fmt: skip
    result = chain.invoke(QUESTION)
    kept = result["context"]
    assert len(kept) == 2 and result["answer"].strip()
    scores = [d.metadata["relevance_score"] for d in kept]
    assert scores == sorted(scores, reverse=True)
    # The scores are the CrossEncoder's on the same pairs; the two best of the three.
    candidates = [d.page_content for d in store.similarity_search(QUESTION, k=3)]
    expected = dict(
        zip(candidates, _expected(cross_encoder_dir, QUESTION, candidates), strict=True)
    )
    for doc in kept:
        assert doc.metadata["relevance_score"] == pytest.approx(
            expected[doc.page_content], abs=1e-5
        )
        assert doc.metadata["source"]  # the document's own metadata stays
    assert min(scores) >= sorted(expected.values())[-2] - 1e-5


async def test_concurrent_reranks_are_batched_and_exact(cross_encoder_dir: Path) -> None:
    reranker = FuriosaRerank(model=str(cross_encoder_dir), top_n=None, dtype="float32")
    texts = [d.page_content for d in DOCUMENTS]
    queries = [QUESTION, "Who keeps the lighthouse?", "When does the bakery open?"] * 4
    native: Any = reranker._get_engine().native
    before = native.num_batches
    results = await asyncio.gather(*(reranker.arerank(texts, q) for q in queries))
    assert native.num_batches - before < len(queries)  # 12 calls shared forward passes
    for query, result in zip(queries, results, strict=True):
        expected = _expected(cross_encoder_dir, query, texts)
        assert [r["index"] for r in result] == sorted(range(3), key=lambda i: -expected[i])
        for r in result:
            assert r["relevance_score"] == pytest.approx(expected[r["index"]], abs=1e-5)
    docs = await reranker.acompress_documents(DOCUMENTS, QUESTION)
    assert [d.page_content for d in docs] == [texts[r["index"]] for r in results[0]]
    assert reranker.compress_documents([], QUESTION) == []
