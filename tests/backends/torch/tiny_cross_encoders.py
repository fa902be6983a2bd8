"""Tiny random-weight cross-encoders built from transformers' config classes (no download).

Two layers of width 64 with the bundled MiniLM tokenizer (BERT's WordPiece), saved by
sentence-transformers' own ``CrossEncoder.save`` (so its activation is on file), with an
initializer wide enough that the scores of different pairs differ.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from furiosa_integrations.models.resolve import default_embedding_dir

_SIZES: dict[str, dict[str, Any]] = {
    "bert": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
    "roberta": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "pad_token_id": 0,  # the MiniLM tokenizer's [PAD]
    },
    # No native encoder: transformers' AutoModelForSequenceClassification.
    "distilbert": {"dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 128},
}


def build(model_type: str, target: Path, *, num_labels: int = 1, seed: int = 0) -> Path:
    """Save a tiny ``model_type`` cross-encoder to ``target`` and return its directory."""
    from sentence_transformers import CrossEncoder
    from transformers import AutoConfig, AutoModelForSequenceClassification

    raw = target / "raw"
    raw.mkdir(parents=True)
    sizes = dict(_SIZES[model_type])
    if model_type != "distilbert":
        sizes["intermediate_size"] = 128
    config = AutoConfig.for_model(
        model_type,
        max_position_embeddings=130,
        vocab_size=30522,
        num_labels=num_labels,
        initializer_range=0.3,
        **sizes,
    )
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 1:  # biases and norms off their initial zeros and ones
                param.add_(torch.randn_like(param) * 0.2)
    model.save_pretrained(str(raw))
    source = default_embedding_dir()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(source / name, raw / name)
    if num_labels != 1:
        return raw
    out = target / "cross-encoder"
    CrossEncoder(str(raw), device="cpu").save(str(out))
    return out
