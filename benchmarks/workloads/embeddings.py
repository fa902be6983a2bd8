"""(e) Embeddings: FuriosaEmbeddings against langchain-huggingface's HuggingFaceEmbeddings
(sentence-transformers) on the same all-MiniLM-L6-v2 files.

- ``embed_documents`` on chunks of 20-200 words, one call;
- many concurrent ``aembed_query`` calls (a server answering users). HuggingFaceEmbeddings
  runs each in a thread-pool thread, one forward pass per query; our engine merges the
  concurrent calls into a few length-bucketed batches.

Our engine runs the encoder's matmuls in bf16 on CPUs with AMX (this machine has it),
sentence-transformers in fp32 by default. Two controls say where the ratio comes from:
our engine held to fp32, and the peer loaded in bf16.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare
from ..inputs import chunks, queries
from ..peers import embedding_model_dir

OURS = "FuriosaEmbeddings"
OURS_FP32 = "FuriosaEmbeddings (fp32 engine)"
PEER = "HuggingFaceEmbeddings"
PEER_BF16 = "HuggingFaceEmbeddings (bf16 model)"


def _runner(embeddings: Any) -> Runner:
    async def concurrent_queries(n: int) -> None:
        await asyncio.gather(*(embeddings.aembed_query(q) for q in queries(n)))

    def run(case: dict[str, Any]) -> dict[str, float]:
        if case["kind"] == "documents":
            embeddings.embed_documents(chunks(case["n"]))
        else:
            asyncio.run(concurrent_queries(case["n"]))
        return {}

    return run


def furiosa_embeddings(dtype: str | None = None) -> Runner:
    from furiosa_integrations import FuriosaEmbeddings

    return _runner(FuriosaEmbeddings(dtype=dtype))


def huggingface_embeddings(path: str, dtype: str | None = None) -> Runner:
    from ..peers import huggingface_embeddings as build

    return _runner(build(path, dtype))


def run(settings: Settings) -> list[Row]:
    docs = 300 if settings.quick else 1000
    n_queries = 200
    doc_case = f"embed_documents, {docs} chunks of 20-200 words"
    query_case = f"{n_queries} concurrent aembed_query"
    return compare(
        "embeddings",
        [
            Contender(OURS, f"{__name__}:furiosa_embeddings"),
            Contender(OURS_FP32, f"{__name__}:furiosa_embeddings", {"dtype": "float32"}),
            Contender(
                PEER_BF16,
                f"{__name__}:huggingface_embeddings",
                {"path": embedding_model_dir(), "dtype": "bfloat16"},
            ),
            Contender(PEER, f"{__name__}:huggingface_embeddings", {"path": embedding_model_dir()}),
        ],
        [
            (doc_case, {"kind": "documents", "n": docs}, Metric("rate", "docs/s", work=docs)),
            (
                query_case,
                {"kind": "queries", "n": n_queries},
                Metric("rate", "q/s", work=n_queries),
            ),
        ],
        settings,
        targets={(OURS, doc_case): 1.2, (OURS, query_case): 4.0},
        warmup={"kind": "documents", "n": 16},
    )
