"""Embedding models against sentence-transformers' own pooled vectors.

Tiny random-weight encoders built from transformers' config classes, saved as
sentence-transformers pipelines with the pooling their config names: a BERT (our own
forward, mean pooling), a DistilBERT (no native encoder: transformers' AutoModel, CLS
pooling) and a Qwen3 decoder used as an embedding model (last-token pooling, the
fallback too). The engine's vectors, texts of different lengths batched together, equal
sentence-transformers' normalized vectors.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from furiosa_integrations.backends.torch import create_torch_engine
from furiosa_integrations.backends.torch.loader import pooling_mode
from furiosa_integrations.engine import AsyncEngine
from furiosa_integrations.models.resolve import default_embedding_dir
from furiosa_integrations.models.tokenizer import load_tokenizer
from tests.backends.torch import tiny_models

pytestmark = pytest.mark.models  # every test here loads a model

TEXTS = [
    "Paris",
    "The ferry crossing takes about forty minutes in calm weather.",
    "RNGD is an NPU.",
    "A longer sentence, so that the batch holds padding: " + "words " * 20,
]
_BERT_SIZES = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
# (model_type, config kwargs, pooling, tokenizer source, runs natively)
ENCODERS: dict[str, tuple[str, dict[str, Any], str, str, bool]] = {
    "bert-mean": ("bert", {**_BERT_SIZES, "intermediate_size": 128}, "mean", "minilm", True),
    "distilbert-cls": (
        "distilbert",
        {"dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 128},
        "cls",
        "minilm",
        False,
    ),
    "qwen3-lasttoken": (
        "qwen3",
        {
            **_BERT_SIZES,
            "intermediate_size": 128,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "vocab_size": tiny_models.VOCAB,
        },
        "lasttoken",
        "smollm2",
        False,
    ),
}


def _st_modules() -> Any:
    try:  # sentence-transformers 6
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # 5.x
        from sentence_transformers import models as modules  # type: ignore[attr-defined,no-redef]
    return modules


def _build(name: str, target: Path) -> Path:
    from sentence_transformers import SentenceTransformer
    from transformers import AutoConfig, AutoModel

    model_type, sizes, pooling, tokenizer, _ = ENCODERS[name]
    raw = target / "raw"
    raw.mkdir(parents=True)
    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, max_position_embeddings=128, **sizes)
    model = AutoModel.from_config(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 1:
                param.add_(torch.randn_like(param) * 0.2)
    model.save_pretrained(str(raw))
    if tokenizer == "minilm":
        source = default_embedding_dir()
        for file in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
            shutil.copy(source / file, raw / file)
    else:
        tiny_models.copy_tokenizer(raw)
    modules = _st_modules()
    transformer = modules.Transformer(str(raw), max_seq_length=128)
    pipeline = [transformer, modules.Pooling(64, pooling_mode=pooling), modules.Normalize()]
    out = target / "st"
    SentenceTransformer(modules=pipeline, device="cpu").save(str(out))
    return out


@pytest.fixture(scope="module", params=list(ENCODERS))
def encoder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return request.param, _build(request.param, tmp_path_factory.mktemp(request.param))


async def test_vectors_match_sentence_transformers(
    encoder: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    from sentence_transformers import SentenceTransformer

    name, path = encoder
    native_expected = ENCODERS[name][4]
    expected = SentenceTransformer(str(path), device="cpu").encode(
        TEXTS, normalize_embeddings=True, convert_to_tensor=True
    )
    with caplog.at_level(logging.WARNING):
        native = create_torch_engine(path, "embed", device="cpu", dtype="float32")
    try:
        assert native.encoder.native is native_expected  # type: ignore[attr-defined]
        assert any("slower path" in r.getMessage() for r in caplog.records) is not native_expected
        pooling = {"lasttoken": "last"}.get(ENCODERS[name][2], ENCODERS[name][2])
        assert native.pooling == pooling  # type: ignore[attr-defined]
        engine = AsyncEngine(native, load_tokenizer(path), name)
        vectors = torch.tensor(await engine.embed(TEXTS))
    finally:
        native.shutdown()
    assert vectors.shape == expected.shape
    assert (vectors - expected.cpu()).abs().max().item() < 1e-4


def test_pooling_config_formats(tmp_path: Path) -> None:
    """sentence-transformers 6 writes ``pooling_mode``; older exports one bool per mode;
    a mode the engine does not implement is refused rather than read as mean."""
    pooling = tmp_path / "1_Pooling"
    pooling.mkdir()
    cases = [
        ({"pooling_mode": "lasttoken"}, "last"),
        ({"pooling_mode": ["cls"]}, "cls"),
        ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, "mean"),
        ({"pooling_mode_lasttoken": True}, "last"),
    ]
    for config, expected in cases:
        (pooling / "config.json").write_text(json.dumps(config))
        assert pooling_mode(tmp_path) == expected
    (pooling / "config.json").write_text(json.dumps({"pooling_mode": "max"}))
    with pytest.raises(ValueError, match="max"):
        pooling_mode(tmp_path)
