"""``EngineArgs`` to an engine: furiosa-llm's ``LLM`` on RNGD, the shared torch engine elsewhere.

``llm_kwargs`` is ``EngineArgs`` as ``LLM(...)`` keyword arguments. furiosa-llm releases
differ in what ``LLM`` takes (an earlier release had ``seed``, ``cache_dir`` and the JIT
options; later ones have ``fxb`` and ``max_model_len``), so an option is passed when the
installed ``LLM`` takes it, skipped when it is at its default, and refused otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Literal

from .. import composition
from ..composition import is_default_model
from ..core import AsyncEngine, Task
from .engine_args import EngineArgs

logger = logging.getLogger(__name__)

# EngineArgs fields that become LLM(...) keyword arguments of the same name.
_LLM_OPTIONS = (
    "revision", "pipeline_parallel_size", "data_parallel_size", "tokenizer", "tokenizer_mode",
    "seed", "devices", "cache_dir", "enable_jit_compilation", "jit_threshold",
    "jit_max_workers", "jit_unit_size", "fxb", "max_model_len",
)  # fmt: skip
_SCHEDULER_OPTIONS = ("npu_queue_limit", "max_processing_samples", "spare_blocks_ratio")


def choose_backend(args: EngineArgs) -> Literal["torch", "furiosa", "remote"]:
    """``auto`` means remote with a ``base_url``, else furiosa when an NPU is present; the
    bundled defaults always run on torch (they have no RNGD artifact)."""
    return composition.resolve_backend(
        args.backend, bundled=is_default_model(args.model), base_url=args.base_url
    )


def infer_task(args: EngineArgs) -> Task:
    """``generate`` or ``embed``: as given, else from the model's files (or its name)."""
    if args.task != "auto":
        return args.task  # type: ignore[return-value]
    return composition.infer_task(args.model)


def scheduler_config(args: EngineArgs) -> Any:
    """furiosa-llm's ``SchedulerConfig`` from the scheduler options (``None``: its defaults)."""
    given = {name: getattr(args, name) for name in _SCHEDULER_OPTIONS}
    if all(value is None for value in given.values()):
        return None
    from furiosa_llm.api import SchedulerConfig

    names = {f.name for f in dataclasses.fields(SchedulerConfig)}
    for name, value in given.items():
        if value is not None and name not in names:
            raise ValueError(f"{name} is not supported by the installed furiosa-llm")
    return SchedulerConfig.load_from_args(args)


def llm_kwargs(args: EngineArgs, llm_cls: Any) -> dict[str, Any]:
    """Keyword arguments for ``llm_cls(...)`` (furiosa-llm's ``LLM``) from ``args``."""
    accepted = composition.furiosa_llm_parameters(llm_cls)
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


def engine_from_args(args: EngineArgs) -> tuple[AsyncEngine, bool]:
    """The engine for ``args``, and whether the caller owns it (and so shuts it down).

    On torch, and for a served model (``base_url``), it is the process-wide shared engine
    of ``get_engine`` (not owned); on furiosa a new furiosa-llm ``LLM`` is built (owned).
    """
    backend = choose_backend(args)
    if backend == "furiosa":
        if is_default_model(args.model):
            composition.refuse_bundled_on_furiosa(args.model)
        llm_cls = composition.furiosa_llm_class()
        return composition.engine_from_furiosa_llm(llm_cls(**llm_kwargs(args, llm_cls))), True
    ignored = args.furiosa_only_options()
    if ignored:
        logger.warning("The %s backend ignores furiosa-only options: %s", backend, sorted(ignored))
    options: dict[str, Any] = {"max_model_len": args.max_model_len} if args.max_model_len else {}
    if backend == "remote":  # ``model`` (unless "default") names the local tokenizer
        options.update(
            base_url=args.base_url,
            api_key=args.api_key or os.environ.get("FURIOSA_API_KEY") or None,
            served_model_name=args.served_model_name,
        )
    else:
        options["device"] = args.device
    engine = composition.get_engine(
        None if args.model == "default" else args.model,
        task=infer_task(args),
        backend=backend,
        **options,
    )
    if args.tokenizer is not None or args.tokenizer_mode == "slow":
        engine = composition.with_tokenizer(
            engine, args.tokenizer, slow=args.tokenizer_mode == "slow"
        )
    return engine, False


__all__ = ["choose_backend", "engine_from_args", "infer_task", "llm_kwargs", "scheduler_config"]
