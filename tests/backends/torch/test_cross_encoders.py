"""Cross-encoders (the pooling engine's ``score`` task) against sentence-transformers.

Tiny random-weight cross-encoders saved by ``CrossEncoder.save``: a BERT and a RoBERTa
(our own encoder plus their heads) and a DistilBERT (transformers' fallback). The engine's
scores for pairs of different lengths, batched together, equal ``CrossEncoder.predict``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from furiosa_integrations.backends.torch import create_torch_engine
from furiosa_integrations.engine import (
    AsyncEngine,
    ContextLengthExceededError,
    InvalidRequestError,
    PoolingParams,
    UnsupportedTaskError,
)
from furiosa_integrations.models.tokenizer import load_tokenizer
from tests.backends.torch import tiny_cross_encoders

pytestmark = pytest.mark.models

QUERY = "How long does the ferry crossing take?"
DOCS = [
    "The ferry crossing takes about forty minutes in calm weather.",
    "RNGD is an NPU.",
    "a",
    "Tickets are sold at the harbour office. " * 6,
]


def _engine(path: Path, **options: Any) -> AsyncEngine:
    native = create_torch_engine(path, "score", device="cpu", **options)
    return AsyncEngine(native, load_tokenizer(path), path.name)


@pytest.fixture(scope="module", params=["bert", "roberta", "distilbert"])
def cross_encoder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return request.param, tiny_cross_encoders.build(request.param, tmp_path_factory.mktemp("ce"))


async def test_scores_equal_sentence_transformers(
    cross_encoder: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    from sentence_transformers import CrossEncoder

    name, path = cross_encoder
    expected = CrossEncoder(str(path), device="cpu").predict([(QUERY, d) for d in DOCS])
    assert max(expected) - min(expected) > 1e-3  # the pairs really score differently
    with caplog.at_level(logging.WARNING):
        engine = _engine(path, dtype="float32")
    try:
        native = engine.native.scorer.native  # type: ignore[attr-defined]
        assert native is (name != "distilbert")
        assert any("slower path" in r.getMessage() for r in caplog.records) is not native
        scores = await engine.score(QUERY, DOCS)
        assert max(abs(a - float(b)) for a, b in zip(scores, expected, strict=True)) < 1e-5
        # N -> N: one query per document, the same pairs.
        assert await engine.score([QUERY] * len(DOCS), DOCS) == pytest.approx(scores, abs=1e-6)
    finally:
        engine.shutdown()


async def test_default_precision_stays_close(cross_encoder_dir: Path) -> None:
    """The default dtype (bf16 matmuls on AMX CPUs and CUDA) stays within 1e-2 of fp32."""
    exact, default = _engine(cross_encoder_dir, dtype="float32"), _engine(cross_encoder_dir)
    try:
        a, b = await exact.score(QUERY, DOCS), await default.score(QUERY, DOCS)
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-2
    finally:
        exact.shutdown()
        default.shutdown()


async def test_concurrent_calls_share_forward_passes(cross_encoder_dir: Path) -> None:
    engine = _engine(cross_encoder_dir, dtype="float32")
    try:
        alone = [(await engine.score(QUERY, [doc]))[0] for doc in DOCS]
        before = engine.native.num_batches  # type: ignore[attr-defined]
        together = await asyncio.gather(*(engine.score(QUERY, [doc]) for doc in DOCS * 8))
        batches = engine.native.num_batches - before  # type: ignore[attr-defined]
        assert batches < len(DOCS) * 8 / 2  # 32 calls, a handful of forwards
        for i, (score,) in enumerate(together):
            assert score == pytest.approx(alone[i % len(DOCS)], abs=1e-5)
        assert engine.stats().request_ids == 0
    finally:
        engine.shutdown()


async def test_long_pairs_are_cut_like_sentence_transformers(cross_encoder_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    long_doc = "harbour ferry tickets " * 80  # far over the 128-token limit
    reference = CrossEncoder(str(cross_encoder_dir), device="cpu")
    expected = reference.predict([(QUERY, long_doc)])
    engine = _engine(cross_encoder_dir, dtype="float32")
    try:
        assert engine.max_model_len == reference.tokenizer.model_max_length
        (score,) = await engine.score(QUERY, [long_doc])
        assert score == pytest.approx(float(expected[0]), abs=1e-5)
        with pytest.raises(ContextLengthExceededError):
            await engine.score(QUERY, [long_doc], PoolingParams(truncate_prompt_tokens=None))
    finally:
        engine.shutdown()


async def test_score_inputs_and_tasks_are_checked(
    cross_encoder_dir: Path, embed_engine: AsyncEngine, tmp_path: Path
) -> None:
    engine = _engine(cross_encoder_dir, dtype="float32")
    try:
        for query, docs, match in [
            (QUERY, [], "must not be empty"),
            (QUERY, "one string", "list of strings"),
            (QUERY, ["ok", 3], r"documents\[1\]"),
            ("  ", DOCS, "non-empty"),
            ([QUERY, QUERY], DOCS, "one query per document"),
        ]:
            with pytest.raises(InvalidRequestError, match=match):
                await engine.score(query, docs)  # type: ignore[arg-type]
        with pytest.raises(UnsupportedTaskError, match="does not support embeddings"):
            await engine.embed(["a text"])
        with pytest.raises(UnsupportedTaskError, match="does not support scoring"):
            await embed_engine.score(QUERY, DOCS)
        assert engine.stats().request_ids == 0
        assert (await engine.score(QUERY, DOCS[:1]))[0] > 0  # still serving
    finally:
        engine.shutdown()
    two_labels = tiny_cross_encoders.build("bert", tmp_path, num_labels=2)
    with pytest.raises(ValueError, match="2 labels"):
        create_torch_engine(two_labels, "score", device="cpu")
