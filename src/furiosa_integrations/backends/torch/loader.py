"""Load a transformers model directory for the torch engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


def load_causal_lm(path: Path, device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    return model.to(device).eval()


def load_encoder(path: Path, device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(path), dtype=dtype)
    return model.to(device).eval()


def eos_token_ids(path: Path, config: Any) -> frozenset[int]:
    """EOS ids from the generation config (which may list several) and the model config."""
    ids: set[int] = set()
    for source in (path / "generation_config.json", path / "config.json"):
        if source.exists():
            value = json.loads(source.read_text()).get("eos_token_id")
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list):
                ids.update(v for v in value if isinstance(v, int))
    if isinstance(getattr(config, "eos_token_id", None), int):
        ids.add(config.eos_token_id)
    return frozenset(ids)


def pooling_mode(path: Path) -> str:
    """The model's own pooling (sentence-transformers' ``1_Pooling``): mean, cls or last."""
    for config_file in sorted(path.glob("*Pooling/config.json")):
        config = json.loads(config_file.read_text())
        if config.get("pooling_mode_cls_token"):
            return "cls"
        if config.get("pooling_mode_lasttoken"):
            return "last"
        if config.get("pooling_mode_mean_tokens"):
            return "mean"
    return "mean"


def sentence_max_length(path: Path) -> int | None:
    """sentence-transformers' ``max_seq_length``, which bounds what the model was trained on."""
    config_file = path / "sentence_bert_config.json"
    if config_file.exists():
        value = json.loads(config_file.read_text()).get("max_seq_length")
        return int(value) if value else None
    return None
