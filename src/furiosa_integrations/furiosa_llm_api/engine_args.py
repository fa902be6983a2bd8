"""``EngineArgs``: furiosa-llm's engine configuration, with its CLI, for every backend.

The fields and defaults are furiosa-llm's (its ``EngineArgs``); a few are added
for the torch backend and for choosing a backend. ``model="default"`` means the bundled
default model. Options only furiosa-llm understands (devices, parallel sizes, scheduler,
JIT) are passed to it on the furiosa backend and ignored, with a warning, on torch.
"""

from __future__ import annotations

import argparse
import os
from argparse import ArgumentParser
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..composition import BACKENDS

# furiosa-llm's defaults (furiosa_llm.api), copied so nothing imports furiosa-llm here.
CACHE_DIR: Path = Path(os.getenv("XDG_CACHE_HOME", Path.home() / ".cache")) / "furiosa" / "llm"
DEFAULT_JIT_THRESHOLD = 5
DEFAULT_JIT_MAX_WORKERS = 15
DEFAULT_JIT_UNIT_SIZE = 8

TokenizerModeType = Literal["auto", "slow"]
TASKS = ("auto", "generate", "embed")

_Args = TypeVar("_Args", bound="EngineArgs")


@dataclass
class EngineArgs:
    """How to build an engine: model, tokenizer, backend and (on RNGD) devices and scheduler."""

    # A local model directory or .gguf, "default" for the bundled default, or (furiosa
    # backend) a Hugging Face model id.
    model: str = "default"
    revision: str | None = None
    pipeline_parallel_size: int | None = None
    data_parallel_size: int | None = None
    tokenizer: str | None = None
    tokenizer_mode: TokenizerModeType = "auto"
    seed: int | None = None
    devices: str | None = None
    cache_dir: os.PathLike[str] | str = CACHE_DIR

    # scheduler_config (furiosa backend)
    npu_queue_limit: int | None = None
    max_processing_samples: int | None = None
    spare_blocks_ratio: float | None = None

    # wiring related arguments (furiosa backend)
    enable_jit_compilation: bool = False
    jit_threshold: int = DEFAULT_JIT_THRESHOLD
    jit_max_workers: int = DEFAULT_JIT_MAX_WORKERS
    jit_unit_size: int = DEFAULT_JIT_UNIT_SIZE

    # Added here (not in furiosa-llm's): backend choice and torch / artifact options.
    backend: str = "auto"  # "auto": furiosa when an NPU is present, else torch
    device: str | None = None  # torch device ("cpu", "cuda", "cuda:1"); None: best available
    task: str = "auto"  # "generate" or "embed"; "auto": from the model
    fxb: str | None = None  # furiosa-llm artifact (.fxb); None: discovered by furiosa-llm
    max_model_len: int | None = None  # cap on prompt + completion tokens
    # A served model (backend "remote", or "auto" with a URL): furiosa-llm serve, vLLM, ...
    base_url: str | None = None  # e.g. "http://localhost:8000/v1"
    api_key: str | None = field(default=None, repr=False)  # None: $FURIOSA_API_KEY
    served_model_name: str | None = None  # None: the one model the server lists

    def __post_init__(self) -> None:
        """Validate JIT-related and backend configuration (each a ``ValueError``).

        - jit_unit_size is at least 2, as smaller values break batching semantics.
        - jit_threshold is at least 1, as 0 would trigger JIT on every request and is
          incompatible with the ring buffer logic in JIT triggering.
        - jit_max_workers is at least 1.
        """
        if self.jit_unit_size < 2:
            raise ValueError(f"jit_unit_size must be >= 2, got {self.jit_unit_size}")
        if self.jit_threshold < 1:
            raise ValueError(f"jit_threshold must be >= 1, got {self.jit_threshold}")
        if self.jit_max_workers < 1:
            raise ValueError(f"jit_max_workers must be >= 1, got {self.jit_max_workers}")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty string, got {self.model!r}")
        if self.tokenizer_mode not in ("auto", "slow"):
            raise ValueError(
                f"tokenizer_mode must be 'auto' or 'slow', got {self.tokenizer_mode!r}"
            )
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.max_processing_samples is not None and self.max_processing_samples <= 0:
            raise ValueError("max_processing_samples must be a positive integer")
        if self.max_model_len is not None and self.max_model_len <= 0:
            raise ValueError(f"max_model_len must be > 0, got {self.max_model_len}")
        if self.backend == "remote" and not self.base_url:
            raise ValueError("backend='remote' needs base_url (the server's URL)")
        if self.base_url and self.backend not in ("auto", "remote"):
            raise ValueError(f"base_url is for backend 'remote', not {self.backend!r}")

    def furiosa_only_options(self) -> dict[str, Any]:
        """Options set away from their defaults that only the furiosa backend uses."""
        names = (
            "revision", "pipeline_parallel_size", "data_parallel_size", "devices", "cache_dir",
            "npu_queue_limit", "max_processing_samples", "spare_blocks_ratio",
            "enable_jit_compilation", "jit_threshold", "jit_max_workers", "jit_unit_size", "fxb",
        )  # fmt: skip
        defaults = EngineArgs()
        return {
            name: getattr(self, name)
            for name in names
            if getattr(self, name) != getattr(defaults, name)
        }

    @staticmethod
    def add_cli_args(parser: ArgumentParser) -> ArgumentParser:
        """Shared CLI arguments for the engine (furiosa-llm's, plus backend, device and task)."""
        d = EngineArgs
        parser.add_argument(
            "--model",
            type=str,
            default=d.model,
            help='A local model directory or .gguf file, "default" for the bundled default '
            "model, or (furiosa backend) a Hugging Face model id or furiosa-llm artifact.",
        )
        parser.add_argument(
            "--revision",
            type=str,
            default=d.revision,
            help="The model revision on Hugging Face Hub (furiosa backend): a branch, tag or "
            "commit id.",
        )
        parser.add_argument(
            "--tokenizer",
            type=str,
            default=d.tokenizer,
            help="The name or path of a Hugging Face Transformers tokenizer.",
        )
        parser.add_argument(
            "--tokenizer-mode",
            type=str,
            choices=["auto", "slow"],
            default=d.tokenizer_mode,
            help='"auto" uses the fast tokenizer if available, "slow" always the slow one.',
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=d.seed,
            help="The seed to initialize the random number generator for sampling.",
        )
        parser.add_argument(
            "--devices",
            type=str,
            default=d.devices,
            help='NPU devices (furiosa backend), comma-separated: "npu:X" for a whole NPU, '
            '"npu:X:Y" for core Y, "npu:X:Y-Z" for fused cores. Default: every free NPU.',
        )
        parser.add_argument(
            "--pipeline-parallel-size",
            type=int,
            default=d.pipeline_parallel_size,
            help="The size of the pipeline parallelism group (furiosa backend).",
        )
        parser.add_argument(
            "--data-parallel-size",
            type=int,
            default=d.data_parallel_size,
            help="The size of the data parallelism group (furiosa backend).",
        )
        parser.add_argument(
            "--cache-dir",
            type=Path,
            default=d.cache_dir,
            help="furiosa-llm's cache directory (furiosa backend).",
        )
        parser.add_argument(
            "--npu-queue-limit",
            type=int,
            default=d.npu_queue_limit,
            help="The NPU queue limit of the scheduler config (furiosa backend).",
        )
        parser.add_argument(
            "--max-processing-samples",
            type=int,
            default=d.max_processing_samples,
            help="The maximum processing samples, a hint for the scheduler (furiosa backend).",
        )
        parser.add_argument(
            "--spare-blocks-ratio",
            type=float,
            default=d.spare_blocks_ratio,
            help="The spare blocks ratio, a hint for the scheduler (furiosa backend).",
        )
        # furiosa-llm's flag took a string ("false" was truthy); a real boolean flag here.
        parser.add_argument(
            "--enable-jit-compilation",
            action=argparse.BooleanOptionalAction,
            default=d.enable_jit_compilation,
            help="[EXPERIMENTAL] Enable JIT compilation (furiosa backend).",
        )
        parser.add_argument(
            "--jit-threshold",
            type=int,
            default=d.jit_threshold,
            help="[EXPERIMENTAL] Number of requests before triggering JIT compilation.",
        )
        parser.add_argument(
            "--jit-max-workers",
            type=int,
            default=d.jit_max_workers,
            help="[EXPERIMENTAL] Maximum concurrent background JIT compilations.",
        )
        parser.add_argument(
            "--jit-unit-size",
            type=int,
            default=d.jit_unit_size,
            help="[EXPERIMENTAL] Number of stages to compile together. Must be >= 2.",
        )
        parser.add_argument(
            "--backend",
            choices=list(BACKENDS),
            default=d.backend,
            help='"furiosa" (RNGD NPU), "torch" (CPU / CUDA), "remote" (--base-url), or "auto": '
            "remote with --base-url, else furiosa when an NPU is present.",
        )
        parser.add_argument(
            "--device",
            type=str,
            default=d.device,
            help='The torch device (torch backend), e.g. "cpu" or "cuda".',
        )
        parser.add_argument(
            "--task",
            choices=list(TASKS),
            default=d.task,
            help='"generate" or "embed"; "auto" infers it from the model.',
        )
        parser.add_argument(
            "--fxb",
            type=str,
            default=d.fxb,
            help="A furiosa-llm artifact (.fxb) to run (furiosa backend).",
        )
        parser.add_argument(
            "--max-model-len",
            type=int,
            default=d.max_model_len,
            help="Cap on prompt plus completion tokens per request.",
        )
        parser.add_argument(
            "--base-url",
            type=str,
            default=d.base_url,
            help="An OpenAI-compatible server to use (furiosa-llm serve, vLLM), e.g. "
            "http://localhost:8000/v1; its API key comes from $FURIOSA_API_KEY.",
        )
        parser.add_argument(
            "--served-model-name",
            type=str,
            default=d.served_model_name,
            help="The model's name on that server (default: the one it serves).",
        )
        return parser

    @classmethod
    def from_cli_args(cls: type[_Args], args: argparse.Namespace) -> _Args:
        """Build from parsed arguments; attributes the namespace lacks keep their defaults."""
        names = [f.name for f in fields(cls) if hasattr(args, f.name)]
        return cls(**{name: getattr(args, name) for name in names})


@dataclass
class AsyncEngineArgs(EngineArgs):
    """``EngineArgs`` for ``AsyncLLMEngine`` (no async-specific options yet, as in furiosa-llm)."""

    @staticmethod
    def add_cli_args(parser: ArgumentParser) -> ArgumentParser:
        return EngineArgs.add_cli_args(parser)
