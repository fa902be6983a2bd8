"""furiosa-llm's score / rerank through our furiosa backend (the stand-in native engine
runs our torch cross-encoder): each pair's prompt is built by furiosa-llm's own
``get_score_prompt`` (as its ``LLM.score`` builds it), sent as one native ``encode`` with
furiosa-llm's ``PoolingParams(task="score")``, and the scores equal the torch backend's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("furiosa_llm", reason="runs in .venv-furiosa (scripts/setup_furiosa_env.sh)")

from furiosa_llm.sampling_params import PoolingParams as FuriosaPooling

from furiosa_integrations.backends.torch import create_torch_engine
from furiosa_integrations.composition import engine_from_furiosa_llm
from furiosa_integrations.engine import AsyncEngine, UnsupportedTaskError
from furiosa_integrations.models.tokenizer import load_transformers_tokenizer

from .conftest import stand_in_llm

pytestmark = pytest.mark.models

QUERY = "How long does the ferry crossing take?"
DOCS = ["The crossing takes 55 minutes.", "RNGD is an NPU.", "a", "Bakery hours. " * 5]


async def test_furiosa_score_equals_the_torch_backend(cross_encoder_dir: Path) -> None:
    native = create_torch_engine(cross_encoder_dir, "score", device="cpu", dtype="float32")
    # furiosa-llm's LLM brings transformers' tokenizer and the model's config.
    tokenizer = load_transformers_tokenizer(cross_encoder_dir)
    torch_engine = AsyncEngine(native, tokenizer, "tiny-ce")
    config = json.loads((cross_encoder_dir / "config.json").read_text())
    llm = stand_in_llm(torch_engine, "bert", tokenizer=tokenizer, hf_configs=config)
    llm.model_metadata.task = "score"
    furiosa = engine_from_furiosa_llm(llm)
    try:
        assert furiosa.backend == "furiosa" and furiosa.task == "score"
        ours = await furiosa.score(QUERY, DOCS, request_id="f-score")
        reference = await torch_engine.score(QUERY, DOCS)
        assert ours == pytest.approx(reference, abs=1e-6)
        received = [params for _, params in llm.engine.received]
        assert len(received) == len(DOCS)
        assert all(isinstance(p, FuriosaPooling) and p.task == "score" for p in received)
        ids = [rid for rid, _ in llm.engine.received]
        assert ids == [f"f-score-{i}" for i in range(len(DOCS))]
        assert furiosa.stats().request_ids == 0
        with pytest.raises(UnsupportedTaskError, match="does not support embeddings"):
            await furiosa.embed(["text"])
    finally:
        native.shutdown()
