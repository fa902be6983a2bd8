"""Build the shared ``AsyncEngine`` that an ``EngineArgs`` describes, on any backend."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .async_engine import AsyncEngine
from .engine_args import EngineArgs
from .protocol import Task

logger = logging.getLogger(__name__)


def choose_backend(args: EngineArgs) -> str:
    """``auto`` means furiosa when an NPU is present; the bundled defaults always run on torch
    (they have no RNGD artifact)."""
    if args.backend != "auto":
        return args.backend
    if args.is_default_model:
        return "torch"
    from ..backends import resolve_backend

    return resolve_backend("auto")


def infer_task(args: EngineArgs) -> Task:
    """``generate`` or ``embed``: as given, else from the model's config (or its name)."""
    from ..models.resolve import DEFAULT_EMBEDDING_MODEL

    if args.task != "auto":
        return args.task  # type: ignore[return-value]
    if args.model == DEFAULT_EMBEDDING_MODEL:
        return "embed"
    path = Path(args.model).expanduser()
    if (path / "modules.json").exists():  # a sentence-transformers model
        return "embed"
    config = path / "config.json"
    if config.exists():
        architectures = json.loads(config.read_text()).get("architectures") or []
        generative = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")
        if architectures and not any(a.endswith(generative) for a in architectures):
            return "embed"
    return "generate"


def engine_from_args(args: EngineArgs) -> tuple[AsyncEngine, bool]:
    """The engine for ``args``, and whether the caller owns it (and so shuts it down).

    On torch it is the process-wide shared engine of ``get_engine`` (not owned); on
    furiosa a new furiosa-llm ``LLM`` is built (owned).
    """
    backend = choose_backend(args)
    if backend == "furiosa":
        from ..backends.furiosa import furiosa_engine_from_args

        return furiosa_engine_from_args(args), True
    ignored = args.furiosa_only_options()
    if ignored:
        logger.warning("The torch backend ignores furiosa-only options: %s", sorted(ignored))
    from .registry import get_engine

    options: dict[str, Any] = {"max_model_len": args.max_model_len} if args.max_model_len else {}
    engine = get_engine(
        None if args.model == "default" else args.model,
        task=infer_task(args),
        backend="torch",
        device=args.device,
        **options,
    )
    if args.tokenizer is not None or args.tokenizer_mode == "slow":
        # Same native engine, another tokenizer: a light AsyncEngine of its own.
        from transformers import AutoTokenizer

        source = args.tokenizer or str(getattr(engine.tokenizer, "name_or_path", ""))
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=args.tokenizer_mode != "slow")
        engine = AsyncEngine(engine.native, tokenizer, engine.model_name, backend="torch")
    return engine, False
