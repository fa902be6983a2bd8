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

# transformers' attribute_map aliases that some configs still write (GPT-2's n_embd,
# DistilBERT's dim, ...); read_config also files them under the usual names.
_CONFIG_ALIASES = {
    "n_embd": "hidden_size",
    "n_head": "num_attention_heads",
    "n_layer": "num_hidden_layers",
    "n_positions": "max_position_embeddings",
    "n_inner": "intermediate_size",
    "dim": "hidden_size",
    "n_heads": "num_attention_heads",
    "n_layers": "num_hidden_layers",
    "hidden_dim": "intermediate_size",
}


def read_config(path: Path) -> dict[str, Any]:
    """``config.json``, with the aliases above under their usual names too."""
    config_file = path / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{path} has no config.json; is it a transformers model directory?")
    config: dict[str, Any] = json.loads(config_file.read_text())
    for alias, name in _CONFIG_ALIASES.items():
        if config.get(alias) is not None:
            config.setdefault(name, config[alias])
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


# sentence-transformers' pooling names -> ours; its legacy configs set one bool per mode.
_POOLING = {"mean": "mean", "cls": "cls", "lasttoken": "last"}
_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def pooling_mode(path: Path) -> str:
    """The model's own pooling (sentence-transformers' ``1_Pooling``): mean, cls or last.

    Both config formats: ``pooling_mode`` (sentence-transformers 6) and the older one bool
    per mode. A mode the engine does not implement is an error, not silently mean."""
    for config_file in sorted(path.glob("*Pooling/config.json")):
        config = json.loads(config_file.read_text())
        modes = config.get("pooling_mode")
        if modes is None:
            modes = [mode for key, mode in _LEGACY_POOLING.items() if config.get(key)]
        modes = [modes] if isinstance(modes, str) else list(modes)
        if len(modes) == 1 and modes[0] in _POOLING:
            return _POOLING[modes[0]]
        if modes:
            raise ValueError(
                f"{config_file}: pooling {modes} is not supported by the torch engine "
                f"(supported: {', '.join(_POOLING)})"
            )
    return "mean"


def sentence_max_length(path: Path) -> int | None:
    """sentence-transformers' ``max_seq_length``, which bounds what the model was trained on."""
    config_file = path / "sentence_bert_config.json"
    if config_file.exists():
        value = json.loads(config_file.read_text()).get("max_seq_length")
        return int(value) if value else None
    return None


def tokenizer_max_length(path: Path) -> int | None:
    """The tokenizer's ``model_max_length`` (what a ``CrossEncoder`` truncates to), unless
    it is transformers' "no limit" placeholder."""
    config_file = path / "tokenizer_config.json"
    if config_file.exists():
        value = json.loads(config_file.read_text()).get("model_max_length")
        if isinstance(value, int) and 0 < value < 1_000_000:
            return value
    return None
