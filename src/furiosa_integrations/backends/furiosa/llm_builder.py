"""Build furiosa-llm's ``LLM`` from ``EngineArgs``, and our engine around it.

Options go to ``LLM(...)`` by name. furiosa-llm releases differ in what ``LLM`` takes
(the seed's release had ``seed``, ``cache_dir`` and the JIT options; later ones have
``fxb`` and ``max_model_len``), so an option is passed when the installed ``LLM``
accepts it, skipped when it is at its default, and refused otherwise.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any

from ...engine.async_engine import AsyncEngine
from ...engine.engine_args import EngineArgs
from ...engine.errors import BackendUnavailableError, ModelNotFoundError, UnsupportedTaskError
from ...models.resolve import ResolvedModel
from .native_engine import FuriosaNativeEngine

# EngineArgs fields that become LLM(...) keyword arguments of the same name.
_LLM_OPTIONS = (
    "revision", "pipeline_parallel_size", "data_parallel_size", "tokenizer", "tokenizer_mode",
    "seed", "devices", "cache_dir", "enable_jit_compilation", "jit_threshold",
    "jit_max_workers", "jit_unit_size", "fxb", "max_model_len",
)  # fmt: skip
_SCHEDULER_OPTIONS = ("npu_queue_limit", "max_processing_samples", "spare_blocks_ratio")


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


def scheduler_config(args: EngineArgs) -> Any:
    """furiosa-llm's ``SchedulerConfig`` from the scheduler options (``None``: its defaults)."""
    if all(getattr(args, name) is None for name in _SCHEDULER_OPTIONS):
        return None
    from furiosa_llm.api import SchedulerConfig

    names = {f.name for f in dataclasses.fields(SchedulerConfig)}
    for name in _SCHEDULER_OPTIONS:
        if getattr(args, name) is not None and name not in names:
            raise ValueError(f"{name} is not supported by the installed furiosa-llm")
    return SchedulerConfig.load_from_args(args)


def llm_kwargs(args: EngineArgs, llm_cls: Any) -> dict[str, Any]:
    """Keyword arguments for ``llm_cls(...)`` (furiosa-llm's ``LLM``) from ``args``."""
    params = inspect.signature(llm_cls.__init__).parameters
    accepted = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    defaults = EngineArgs()
    kwargs: dict[str, Any] = {"model_id_or_path": args.model}
    for name in _LLM_OPTIONS:
        value = getattr(args, name)
        if name in accepted:
            if value is not None:
                kwargs[name] = value
        elif value != getattr(defaults, name):
            raise ValueError(f"{name}={value!r} is not supported by the installed furiosa-llm")
    config = scheduler_config(args)
    if config is not None:
        kwargs["scheduler_config"] = config
    return kwargs


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
    if task == "generate":
        ours = "generate"
    elif task == "embed":
        ours = "embed"
    else:
        raise UnsupportedTaskError(
            f"furiosa-llm task {task!r} is not served here (only generate and embed)"
        )
    return FuriosaNativeEngine(
        llm.engine,
        task=ours,  # type: ignore[arg-type]
        stop_ids=_stop_ids(llm),
        tokenizer=llm.tokenizer,
        llm=llm,
        supports_images=supports_images(llm),
    )


def furiosa_engine_from_llm(llm: Any) -> AsyncEngine:
    """The shared engine's API over an existing furiosa-llm ``LLM``."""
    native = native_engine_from_llm(llm)
    name = str(
        getattr(llm, "served_model_name", None) or getattr(llm, "model_id_or_path", "furiosa")
    )
    return AsyncEngine(
        native, llm.tokenizer, name, backend="furiosa", supports_images=native.supports_images
    )


def _refuse_default(model: str) -> None:
    raise ModelNotFoundError(
        f"The bundled default model {model!r} has no RNGD build. On the furiosa backend pass "
        "a furiosa-ai model id or a local model directory with its .fxb artifact, or use "
        "backend='torch'."
    )


def furiosa_engine_from_args(args: EngineArgs) -> AsyncEngine:
    """Build furiosa-llm's ``LLM`` from ``args`` (on RNGD) and our engine around it."""
    if args.is_default_model:
        _refuse_default(args.model)
    llm_cls = import_llm()
    return furiosa_engine_from_llm(llm_cls(**llm_kwargs(args, llm_cls)))


def create_furiosa_engine(
    model: ResolvedModel, device: str | None = None, **options: Any
) -> FuriosaNativeEngine:
    """The native engine ``get_engine`` asks for: ``device`` names NPU devices ("npu:0");
    ``options`` are ``EngineArgs`` fields (devices, parallel sizes, scheduler, fxb...)."""
    from ...models.resolve import DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL

    if model.name in (DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL):
        _refuse_default(model.name)
    names = {f.name for f in dataclasses.fields(EngineArgs)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f"Unknown furiosa backend options: {unknown}")
    if device is not None:
        options.setdefault("devices", device)
    args = EngineArgs(model=str(model.path), backend="furiosa", task=model.task, **options)
    llm_cls = import_llm()
    return native_engine_from_llm(llm_cls(**llm_kwargs(args, llm_cls)))
