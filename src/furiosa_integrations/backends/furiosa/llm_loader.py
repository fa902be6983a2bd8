"""Load furiosa-llm's ``LLM`` and put our native protocol over its engine.

``load_llm`` passes options to ``LLM(...)`` by name and refuses one the installed
furiosa-llm does not take (releases differ); ``native_engine_from_llm`` wraps an ``LLM``
(loaded here or by the caller) as a ``FuriosaNativeEngine``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...core import Task
from ...errors import BackendUnavailableError, UnknownOptionError, UnsupportedTaskError
from .native_engine import FuriosaNativeEngine


def import_llm() -> Any:
    """furiosa-llm's ``LLM`` class, or a clear error where it is not installed."""
    try:
        from furiosa_llm import LLM
    except ImportError as exc:
        raise BackendUnavailableError(
            "The furiosa backend needs furiosa-llm on an RNGD machine: "
            "pip install 'furiosa-integrations[npu]'"
        ) from exc
    return LLM


def llm_parameters(llm_cls: Any) -> set[str]:
    """The keyword arguments the installed furiosa-llm's ``LLM(...)`` takes."""
    params = inspect.signature(llm_cls.__init__).parameters
    return {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def load_llm(model: str, options: Mapping[str, Any]) -> Any:
    """``LLM(model, **options)``; an option this furiosa-llm does not take is refused."""
    llm_cls = import_llm()
    known = llm_parameters(llm_cls) - {"self", "model_id_or_path"}
    UnknownOptionError.check("the furiosa backend (furiosa-llm's LLM)", options, known)
    return llm_cls(model_id_or_path=model, **options)


def supports_images(llm: Any) -> bool:
    """Whether furiosa-llm registers an image input converter for the model's type."""
    try:
        import furiosa_llm.mm_models  # noqa: F401 - registers the converters
        from furiosa_llm.mm_models.registry import _INPUT_CONVERTER_REGISTRY

        return str(llm.model_metadata.model_type) in _INPUT_CONVERTER_REGISTRY
    except Exception:
        return False


def _stop_ids(llm: Any) -> set[int]:
    """EOS ids of the tokenizer and the model's generation config."""
    ids: set[int] = set()
    eos = getattr(llm.tokenizer, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    config = Path(str(getattr(llm, "model_id_or_path", ""))) / "generation_config.json"
    if config.is_file():
        value = json.loads(config.read_text()).get("eos_token_id")
        ids.update(value if isinstance(value, list) else [value] if isinstance(value, int) else [])
    return ids


def native_engine_from_llm(llm: Any) -> FuriosaNativeEngine:
    """Our protocol over ``llm.engine``; the ``LLM`` stays alive as long as it does."""
    task = llm.model_metadata.task
    ours: Task
    if task == "generate":
        ours = "generate"
    elif task == "embed":
        ours = "embed"
    elif task == "score" or getattr(llm.model_metadata, "use_binary_seq_class", False):
        ours = "score"  # a reranker: furiosa-llm's score / rerank
    else:
        raise UnsupportedTaskError(
            f"furiosa-llm task {task!r} is not served here (only generate, embed and score)"
        )
    return FuriosaNativeEngine(
        llm.engine,
        task=ours,
        stop_ids=_stop_ids(llm),
        tokenizer=llm.tokenizer,
        llm=llm,
        supports_images=supports_images(llm),
    )


__all__ = ["import_llm", "llm_parameters", "load_llm", "native_engine_from_llm", "supports_images"]
