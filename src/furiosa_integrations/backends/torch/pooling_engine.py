"""The torch pooling engine: micro-batched, length-bucketed embeddings and pair scores.

Concurrent ``encode`` calls queue up while a batch runs; the engine thread then takes
all of them at once, sorts their inputs by length and runs them in padded batches, so
200 concurrent single queries cost a handful of forward passes. A batch stops growing
when padding would exceed a small share of it: on CPU a few hundred rows already keep
the matmuls efficient, while padding is pure waste. A cross-encoder (task ``"score"``)
runs the same way: each query-document pair is one row, its head gives one score.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F

from ...core import (
    NativeEngineBase,
    NativeStats,
    NativeStep,
    PoolingParams,
    SamplingParams,
    ScorePair,
    Task,
)
from ...errors import DuplicateRequestIdError, EngineError, UnsupportedTaskError
from ..loop_sink import loop_sink
from .device import pick_encoder_dtype, prepare_device
from .encoder import Encoder, load_encoder
from .engine_thread import EngineThread, run_on_compute_thread
from .loader import pooling_mode, read_config, sentence_max_length, tokenizer_max_length
from .score_head import Scorer, load_scorer


@dataclass
class _Job:
    request_id: str
    prompts: list[list[int]]
    token_types: list[list[int] | None]  # a pair's segments (score), or None
    params: PoolingParams
    sink: Callable[[Any], bool]
    cancelled: bool = False


class TorchPoolingEngine(EngineThread, NativeEngineBase):
    """Native engine for encoder models (BERT-style): ``task="embed"`` pools hidden states
    into vectors, ``task="score"`` runs a cross-encoder's head over query-document pairs."""

    def __init__(
        self,
        model_path: str | Path,
        task: Task = "embed",
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        max_model_len: int | None = None,
        max_batch_tokens: int | None = None,
        max_batch_size: int = 64,
        max_padding: float = 0.1,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(name=f"furiosa-torch-{task}")
        if task not in ("embed", "score"):
            raise UnsupportedTaskError(f"The pooling engine serves embed and score, not {task!r}")
        self.task: Task = task
        self.model_path = path = Path(model_path)
        config = read_config(path)
        self.encoder: Encoder | None = None
        self.scorer: Scorer | None = None

        def load() -> int:  # every torch call on the compute thread (engine_thread: why)
            self.device = prepare_device(device, num_threads)
            self.dtype = pick_encoder_dtype(self.device, dtype)
            if task == "score":
                self.scorer = load_scorer(path, config, self.device, self.dtype)
                return self.scorer.max_positions
            self.encoder = load_encoder(path, config, self.device, self.dtype)
            return self.encoder.max_positions

        limit = run_on_compute_thread(load)
        trained = sentence_max_length(path) or tokenizer_max_length(path) or limit
        self.max_model_len = min(max_model_len or trained, limit)
        self.pooling = pooling_mode(path)
        self.hidden_size = int(config["hidden_size"])
        self.pad_token_id = int(config.get("pad_token_id") or 0)
        # On CPU a batch of 2,048 tokens keeps the matmuls efficient while the layers' outputs
        # (an MLP's: 12 MB in fp32 for a 384-wide model) stay below glibc's 32 MB mmap limit
        # and near the caches: at 8,192 every layer mapped and zeroed fresh pages, and
        # embed_documents ran ~1.2x slower (fp32, Zen 4). A GPU wants the bigger batches.
        self.max_batch_tokens = max_batch_tokens or (2048 if self.device.type == "cpu" else 8192)
        self.max_batch_size = max_batch_size
        self.max_padding = max_padding  # share of a batch's padded tokens that may be padding
        # Re-entrant: a dropped stream's finalizer can abort a request from inside a
        # section holding it (the GC runs on the compute thread too).
        self._lock = threading.RLock()
        self._jobs: deque[_Job] = deque()
        self._ids: set[str] = set()
        self.num_batches = 0
        self.start()

    def stats(self) -> NativeStats:
        with self._lock:
            return NativeStats(
                running=0, waiting=len(self._jobs), used_cache_slots=0, request_ids=len(self._ids)
            )

    def stream_generate(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        request_id: str,
        images: Sequence[Any] = (),
    ) -> AsyncGenerator[NativeStep, None]:
        raise UnsupportedTaskError("This is an embedding model; it does not generate text")

    async def encode(
        self, prompts: list[list[int]], params: PoolingParams, request_id: str
    ) -> list[list[float]]:
        if self.task != "embed":
            raise UnsupportedTaskError("This is a cross-encoder; it scores pairs, not texts")
        return await self._submit(prompts, [None] * len(prompts), params, request_id)

    async def score(
        self, pairs: list[ScorePair], params: PoolingParams, request_id: str
    ) -> list[float]:
        if self.task != "score":
            raise UnsupportedTaskError("This is an embedding model; it does not score pairs")
        prompts = [pair.token_ids for pair in pairs]
        types = [pair.token_type_ids for pair in pairs]
        return [row[0] for row in await self._submit(prompts, types, params, request_id)]

    async def _submit(
        self,
        prompts: list[list[int]],
        token_types: list[list[int] | None],
        params: PoolingParams,
        request_id: str,
    ) -> list[list[float]]:
        """Queue one job for the engine thread and wait for its rows."""
        self.check_alive()
        future: asyncio.Future[list[list[float]]] = asyncio.get_running_loop().create_future()

        def deliver(result: list[list[float]] | BaseException) -> None:
            if future.done():
                return
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

        sink = loop_sink(asyncio.get_running_loop(), deliver)
        job = _Job(request_id, prompts, token_types, params, sink)
        with self._lock:
            if request_id in self._ids:
                raise DuplicateRequestIdError(f"Request id {request_id!r} is already in flight")
            self._ids.add(request_id)
            self._jobs.append(job)
        self.wake()
        try:
            return await future
        finally:
            if not future.done():  # cancelled: drop the job if it has not run yet
                self.abort_request(request_id)

    def abort_request(self, request_id: str) -> None:
        with self._lock:
            for job in self._jobs:
                if job.request_id == request_id:
                    job.cancelled = True
            self._ids.discard(request_id)

    def shutdown(self) -> None:
        self.stop()

    # ---- on the compute thread (engine_thread.ComputeThread) ----

    def has_work(self) -> bool:
        return bool(self._jobs)

    def step(self) -> None:
        with self._lock:
            jobs = [j for j in self._jobs if not j.cancelled]
            self._jobs.clear()
        items = [(j, i, p) for j in jobs for i, p in enumerate(j.prompts)]
        items.sort(key=lambda item: len(item[2]))
        vectors: dict[int, list[torch.Tensor | None]] = {
            id(j): [None] * len(j.prompts) for j in jobs
        }
        failed: dict[int, BaseException] = {}
        start = 0
        while start < len(items):
            end = self._batch_end(items, start)
            chunk = items[start:end]
            try:
                pooled = self._forward(
                    [p for _, _, p in chunk], [j.token_types[i] for j, i, _ in chunk]
                )
                for (job, index, _), vector in zip(chunk, pooled, strict=True):
                    vectors[id(job)][index] = vector
            except Exception as exc:
                for job, _, _ in chunk:
                    failed[id(job)] = EngineError(f"The embedding step failed: {exc!r}")
            start = end
        for job in jobs:
            result: list[list[float]] | BaseException
            if id(job) in failed:
                result = failed[id(job)]
            else:
                result = self._finalize(vectors[id(job)], job.params)
            with self._lock:
                self._ids.discard(job.request_id)
            job.sink(result)

    def _batch_end(self, items: list[tuple[_Job, int, list[int]]], start: int) -> int:
        """End of the batch starting at ``start`` (items sorted by length): grow it while it
        stays within the row and token budgets and little of it is padding."""
        end = start + 1
        real = len(items[start][2])
        while end < len(items) and end - start < self.max_batch_size:
            width = len(items[end][2])  # sorted: the newcomer sets the padded width
            rows = end - start + 1
            if width * rows > self.max_batch_tokens:
                break
            if real + width < (1.0 - self.max_padding) * width * rows:
                break
            real += width
            end += 1
        return end

    @torch.inference_mode()
    def _forward(
        self, prompts: list[list[int]], token_types: list[list[int] | None]
    ) -> torch.Tensor:
        """One padded batch: pooled vectors ``[B, H]`` (embed) or scores ``[B, 1]`` (score)."""
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        types = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, : len(prompt)] = torch.tensor(prompt)
            mask[row, : len(prompt)] = 1
            if token_types[row] is not None:
                types[row, : len(prompt)] = torch.tensor(token_types[row])
        ids, mask = ids.to(self.device), mask.to(self.device)
        self.num_batches += 1
        if self.scorer is not None:
            return self.scorer(ids, mask, types.to(self.device)).unsqueeze(-1)
        hidden = cast(Encoder, self.encoder)(ids, mask)
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "last":
            last = mask.sum(dim=1) - 1
            return hidden[torch.arange(hidden.shape[0]), last]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)

    def _finalize(
        self, vectors: list[torch.Tensor | None], params: PoolingParams
    ) -> list[list[float]]:
        stacked = torch.stack([v for v in vectors if v is not None]).float().cpu()
        if self.task == "score":
            return stacked.tolist()  # type: ignore[no-any-return]
        if params.dimensions is not None:
            stacked = stacked[:, : params.dimensions]
        if params.normalize:
            stacked = F.normalize(stacked, p=2, dim=-1)
        return stacked.tolist()  # type: ignore[no-any-return]

    def on_stop(self, error: BaseException) -> None:
        with self._lock:
            jobs = list(self._jobs)
            self._jobs.clear()
            self._ids.clear()
        for job in jobs:
            job.sink(error)
