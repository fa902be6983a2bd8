"""The cross-encoder the rerank examples use when none is given.

No reranker ships in a PyPI package, so without ``--reranker PATH`` (a local cross-encoder
directory, such as a copy of cross-encoder/ms-marco-MiniLM-L6-v2) the examples build a
small BERT cross-encoder with random weights once, into the package's cache. It shows the
pipeline working offline; its scores carry no meaning.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from furiosa_integrations.models.gguf_cache import default_cache_dir
from furiosa_integrations.models.resolve import default_embedding_dir


def reranker_path(given: Path | None) -> Path:
    if given is not None:
        return given
    target = default_cache_dir() / "demo-cross-encoder"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    print("No --reranker given: building a random-weight demo cross-encoder (scores are not")
    print(f"meaningful; pass a real one for real rankings) in {target}\n")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=256,
        num_labels=1,
        initializer_range=0.3,
    )
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    BertForSequenceClassification(config).save_pretrained(str(staging))
    source = default_embedding_dir()  # the bundled MiniLM's WordPiece tokenizer
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(source / name, staging / name)
    staging.rename(target)
    return target
