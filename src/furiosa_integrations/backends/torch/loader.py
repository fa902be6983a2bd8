"""Read a transformers model directory (config and weights) for the torch engine.

The engines run their own forward passes, so they need only ``config.json`` and the
tensors; reading those directly keeps transformers' modeling stack (seconds of imports)
out of start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


def read_config(path: Path) -> dict[str, Any]:
    config_file = path / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{path} has no config.json; is it a transformers model directory?")
    config: dict[str, Any] = json.loads(config_file.read_text())
    return config


def load_weights(
    path: Path, device: torch.device, dtype: torch.dtype, anchor: str
) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint, cast to ``dtype`` on ``device``.

    Keys lose whatever prefix precedes ``anchor`` (``model.``, ``bert.``, ...), so one
    loader reads base-model and task-head checkpoints alike. Floating tensors are cast;
    integer buffers (BERT's position_ids) are kept as they are.
    """
    files = sorted(path.glob("*.safetensors"))
    tensors: dict[str, torch.Tensor] = {}
    if files:
        from safetensors.torch import load_file

        for file in files:
            tensors.update(load_file(str(file)))
    else:
        for file in sorted(path.glob("pytorch_model*.bin")):
            tensors.update(torch.load(file, map_location="cpu", weights_only=True))
    if not tensors:
        raise FileNotFoundError(f"{path} holds no *.safetensors or pytorch_model*.bin weights")
    prefix = next((k[: -len(anchor)] for k in tensors if k.endswith(anchor)), None)
    if prefix is None:
        raise ValueError(f"{path}: no {anchor!r} tensor; not a checkpoint this engine reads")
    out: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        if prefix and key.startswith(prefix):
            key = key[len(prefix) :]
        if tensor.is_floating_point():
            tensor = tensor.to(dtype)
        out[key] = tensor.to(device)
    return out


def eos_token_ids(path: Path, config: dict[str, Any]) -> frozenset[int]:
    """EOS ids from the generation config (which may list several) and the model config."""
    ids: set[int] = set()
    sources = [config]
    generation_config = path / "generation_config.json"
    if generation_config.exists():
        sources.append(json.loads(generation_config.read_text()))
    for source in sources:
        value = source.get("eos_token_id")
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(v for v in value if isinstance(v, int))
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
