"""The torch generation engine: continuous batching over a slot KV cache.

Each engine-thread step admits waiting requests (one packed prefill, so a newcomer gets
its first token at once), then runs one batched decode step for every running request.
Requests join and leave between steps. Greedy output does not depend on the batch: each
row's attention sees only its own slot, and sampling is per row.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ...core import (
    NativeEngineBase,
    NativeLogprob,
    NativeStats,
    NativeStep,
    PoolingParams,
    RequestOutputKind,
    SamplingParams,
    Task,
)
from ...errors import (
    DuplicateRequestIdError,
    EngineError,
    InvalidRequestError,
    UnsupportedTaskError,
)
from ..loop_sink import LoopSink, deliver_all, loop_sink
from .decoders import Decoder, PrefillSegment, load_decoder
from .device import pick_dtype, pick_light_weights, prepare_device
from .engine_thread import EngineThread, run_on_compute_thread
from .finished_cache import FinishedSequence, FinishedSequenceCache
from .grammar import GrammarConstraints
from .loader import eos_token_ids, read_config
from .prefix_sharing import best_prefix
from .sampler import ConstraintFactory, SamplingState, sample
from .sequence_state import SequenceState

logger = logging.getLogger(__name__)


class TorchGenerationEngine(EngineThread, NativeEngineBase):
    """Native engine for causal LMs on CPU or CUDA."""

    task: Task = "generate"

    def __init__(
        self,
        model_path: str | Path,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        max_model_len: int | None = None,
        max_num_seqs: int = 64,
        max_prefill_tokens: int = 2048,
        enable_prefix_caching: bool = True,
        finished_cache_bytes: int = 256 << 20,
        num_threads: int | None = None,
        constraint_factory: ConstraintFactory | None = None,
    ) -> None:
        super().__init__(name="furiosa-torch-generate")
        self.model_path = path = Path(model_path)
        config = read_config(path)
        limit = int(config.get("max_position_embeddings", 4096))
        self.max_model_len = min(max_model_len or limit, limit)

        def load() -> Decoder:  # every torch call on the compute thread (engine_thread: why)
            self.device = prepare_device(device, num_threads)
            self.dtype = pick_dtype(self.device, dtype)
            light_weights = pick_light_weights(self.device, dtype)
            return load_decoder(
                path, config, self.device, self.dtype, self.max_model_len, light_weights
            )

        self.decoder = run_on_compute_thread(load)
        logger.info(
            "%s on %s: %s math, linear weights %s (dtype='float32' keeps fp32 weights)",
            path.name,
            self.device,
            self.dtype,
            self.decoder.weights,
        )
        self.vocab_size = self.decoder.vocab_size
        self.eos_token_ids = eos_token_ids(path, config)
        self.max_num_seqs = max_num_seqs
        self.max_prefill_tokens = max_prefill_tokens
        self.enable_prefix_caching = enable_prefix_caching
        # Finished sequences' K/V, for the next turn of a chat or agent loop (native
        # decoders; the transformers fallback keeps per-slot caches of its own).
        self.finished_sequences: FinishedSequenceCache | None = None
        if enable_prefix_caching and finished_cache_bytes > 0 and self.decoder.native:
            self.finished_sequences = FinishedSequenceCache(finished_cache_bytes)
        if constraint_factory is None:
            constraint_factory = GrammarConstraints(path, self.vocab_size, self.eos_token_ids)
        self.constraint_factory = constraint_factory

        # Re-entrant: a dropped stream's finalizer can abort a request from inside a
        # section holding it (the GC runs on the compute thread too).
        self._lock = threading.RLock()
        self._requests: dict[str, SequenceState] = {}  # every id in flight, waiting or running
        self._inbox: deque[SequenceState] = deque()
        self._aborted: list[SequenceState] = []  # to stop on the engine thread
        self._waiting: deque[SequenceState] = deque()
        self._running: list[SequenceState] = []  # _running[i] occupies slot i
        self.num_steps = 0  # decode steps run so far (for tests and benchmarks)
        self.num_prefill_tokens = 0  # prompt tokens actually computed (prefix hits excluded)
        self.start()

    # ---- protocol, called from any thread / event loop ----

    def stats(self) -> NativeStats:
        with self._lock:
            return NativeStats(
                running=len(self._running),
                waiting=len(self._waiting) + len(self._inbox),
                used_cache_slots=len(self._running),
                request_ids=len(self._requests),
            )

    async def stream_generate(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        request_id: str,
        images: Sequence[Any] = (),
    ) -> AsyncGenerator[NativeStep, None]:
        if images:
            raise InvalidRequestError("The torch backend serves text-only models: no images")
        self.check_alive()
        queue: asyncio.Queue[NativeStep | BaseException] = asyncio.Queue()
        request = self._make_request(prompt_token_ids, params, request_id, queue)
        with self._lock:
            if request_id in self._requests:
                raise DuplicateRequestIdError(f"Request id {request_id!r} is already in flight")
            self._requests[request_id] = request
            self._inbox.append(request)
        self.wake()
        done = False
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    done = True
                    raise item
                done = item.finish_reason is not None
                yield item
                if done:
                    return
        finally:
            if not done:  # consumer stopped early, was cancelled, or errored
                self._abort(request)  # this request, not a newer one that reuses its id

    async def encode(
        self, prompts: list[list[int]], params: PoolingParams, request_id: str
    ) -> list[list[float]]:
        raise UnsupportedTaskError("This is a generation model; it does not support pooling")

    def abort_request(self, request_id: str) -> None:
        with self._lock:
            request = self._requests.get(request_id)
        if request is not None:
            self._abort(request)

    def _abort(self, request: SequenceState) -> None:
        """Free the id at once (it may be reused as soon as this returns); the engine thread
        stops the request and frees its slot at its next step."""
        with self._lock:
            if self._requests.get(request.request_id) is request:
                del self._requests[request.request_id]
            if not request.finished and request not in self._aborted:
                self._aborted.append(request)
        self.wake()

    def shutdown(self) -> None:
        self.stop()

    def check_structured_outputs(self, params: SamplingParams) -> None:
        """Compile (cached) now, so an invalid schema, regex or grammar fails before queuing,
        and a budget too small for any complete output is refused."""
        self.constraint_factory.check(params)

    # ---- helpers ----

    def _make_request(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        request_id: str,
        queue: asyncio.Queue[NativeStep | BaseException],
    ) -> SequenceState:
        room = self.max_model_len - len(prompt_token_ids)
        max_tokens = min(params.max_tokens or room, room)
        generator = None
        if not params.greedy:
            generator = torch.Generator(device=self.device)
            if params.seed is not None:
                generator.manual_seed(params.seed)
            else:
                generator.seed()
        constraint = None
        if params.structured_outputs is not None:
            constraint = self.constraint_factory(params)
        state = SamplingState(
            params=params,
            generator=generator,
            eos_token_ids=frozenset() if params.ignore_eos else self.eos_token_ids,
            prompt_token_ids=list(prompt_token_ids),
            max_tokens=max_tokens,
            constraint=constraint,
        )
        # A caller that reads only the end gets its steps at the end, unless stop strings,
        # matched on the text as it comes, may have to end the request early.
        hold = params.output_kind is RequestOutputKind.FINAL_ONLY and not params.stop
        sink = loop_sink(asyncio.get_running_loop(), queue.put_nowait, hold)
        return SequenceState(request_id, list(prompt_token_ids), max_tokens, state, sink)

    # ---- on the compute thread (engine_thread.ComputeThread) ----

    def has_work(self) -> bool:
        return bool(self._inbox or self._aborted or self._waiting or self._running)

    def background_work(self) -> bool:
        return self.decoder.settle()  # the groups into huge pages, a piece at a time

    @torch.inference_mode()
    def step(self) -> None:
        self._take_inbox()
        admitted = self._admit()
        if admitted:
            self._guarded(admitted, lambda: self._prefill(admitted))
        batch = [r for r in self._running if r.pending_token is not None]
        if batch:
            self._guarded(batch, lambda: self._decode(batch))

    def _guarded(self, requests: list[SequenceState], run: Callable[[], None]) -> None:
        """A failing model step fails only its own requests; the engine keeps serving."""
        try:
            run()
        except Exception as exc:
            logger.exception("torch engine step failed")
            error = EngineError(f"The model step failed: {exc!r}")
            for request in requests:
                if not request.finished:
                    self._finish(request, error)

    def _take_inbox(self) -> None:
        with self._lock:
            new = list(self._inbox)
            self._inbox.clear()
            aborted, self._aborted = self._aborted, []
        self._waiting.extend(new)
        for request in aborted:
            if not request.finished:
                self._finish(request, NativeStep([], finish_reason="abort"))

    def _admit(self) -> list[SequenceState]:
        admitted: list[SequenceState] = []
        budget = self.max_prefill_tokens
        while self._waiting and len(self._running) < self.max_num_seqs:
            request = self._waiting[0]
            if self.enable_prefix_caching:
                kept = self.finished_sequences.entries() if self.finished_sequences else []
                source, cached = best_prefix(request, [*self._running, *kept], admitted)
                request.prefix_source, request.num_cached_prompt_tokens = source, cached
                if isinstance(source, FinishedSequence) and self.finished_sequences:
                    self.finished_sequences.used(source)
            cost = len(request.prompt_token_ids) - request.num_cached_prompt_tokens
            if admitted and cost > budget:
                break
            self._waiting.popleft()
            request.slot = len(self._running)
            self._running.append(request)
            admitted.append(request)
            budget -= cost
        if admitted:
            # Room for the prompts now; decode grows the cache as sequences lengthen.
            longest = max(len(r.prompt_token_ids) + 1 for r in admitted)
            longest = max(longest, *(r.cached_len + 1 for r in self._running))
            self.decoder.cache.ensure(len(self._running), min(longest, self.max_model_len))
        return admitted

    def _prefill(self, requests: list[SequenceState]) -> None:
        # Requests that copy a prefix from one prefilled in this same step go second.
        followers = [r for r in requests if r.prefix_source in requests]
        leaders = [r for r in requests if r.prefix_source not in requests]
        logits = [self._prefill_packed(group) for group in (leaders, followers) if group]
        self._sample_and_emit(leaders + followers, torch.cat(logits))

    def _prefill_packed(self, requests: list[SequenceState]) -> torch.Tensor:
        """One packed forward over the new prompt tokens of ``requests``; their last logits."""
        segments = []
        tokens: list[int] = []
        for request in requests:
            reused = request.num_cached_prompt_tokens
            if request.prefix_source is not None:
                request.prefix_source.copy_prefix_into(self.decoder.cache, request.slot, reused)
                request.prefix_source = None
            new_tokens = request.prompt_token_ids[reused:]
            segments.append(PrefillSegment(request.slot, len(tokens), len(new_tokens), reused))
            tokens.extend(new_tokens)
        ids = torch.tensor(tokens, dtype=torch.long, device=self.device)
        logits = self.decoder.prefill(ids, segments)
        for request in requests:
            request.cached_len = len(request.prompt_token_ids)
        self.num_prefill_tokens += len(tokens)
        return logits

    def _decode(self, batch: list[SequenceState]) -> None:
        # Rows must be slots 0..B-1 for the cache view; only running requests with a
        # pending token decode, and all running requests have one between steps.
        assert all(r.slot == i for i, r in enumerate(batch)), "running slots are not compact"
        needed = max(r.cached_len + 1 for r in batch)
        self.decoder.cache.ensure(len(self._running), needed)
        tokens = torch.tensor(
            [r.pending_token for r in batch], dtype=torch.long, device=self.device
        )
        positions = torch.tensor(
            [r.cached_len for r in batch], dtype=torch.long, device=self.device
        )
        logits = self.decoder.decode(tokens, positions)
        for request in batch:
            request.cached_len += 1
        self.num_steps += 1
        self._sample_and_emit(batch, logits)

    def _sample_and_emit(self, requests: list[SequenceState], logits: torch.Tensor) -> None:
        tokens, logprobs = sample(logits, [r.state for r in requests])
        running: list[SequenceState] = []
        steps: list[tuple[LoopSink, NativeStep]] = []
        for request, token, logprob in zip(requests, tokens, logprobs, strict=True):
            step = self._append_token(request, token, logprob)
            if step is not None:
                running.append(request)
                steps.append((request.sink, step))
        for request, delivered in zip(running, deliver_all(steps), strict=True):
            if not delivered:  # the caller's event loop is gone
                self._finish(request, NativeStep([], finish_reason="abort"))

    def _append_token(
        self, request: SequenceState, token: int, logprob: NativeLogprob | None
    ) -> NativeStep | None:
        """Record ``token``; a finished request gets its last step now, a running one's step
        is returned for delivery with the rest of the batch."""
        state = request.state
        state.output_token_ids.append(token)
        if state.constraint is not None:
            state.constraint.accept(token)
        params = state.params
        finish: Any = None
        stop_token: int | None = None
        if token in state.eos_token_ids or token in (params.stop_token_ids or ()):
            finish, stop_token = "stop", token
        elif state.constraint is not None and state.constraint.is_terminated():
            finish = "stop"
        if finish == "stop" and state.constraint is not None and state.constraint.cut_by_budget:
            # Complete and valid, but cut short to fit max_tokens: say so, whatever ended it.
            finish, stop_token = "length", None
        elif len(state.output_token_ids) >= request.max_tokens:
            finish = "length"
        elif request.cached_len + 1 >= self.max_model_len:
            finish = "length"
        step = NativeStep(
            [token],
            finish_reason=finish,
            stop_token_id=stop_token,
            logprobs=[logprob] if logprob is not None else None,
            num_prompt_tokens=len(request.prompt_token_ids),
            num_cached_tokens=request.num_cached_prompt_tokens,
        )
        if finish is not None:
            self._finish(request, step)
            return None
        request.pending_token = token
        return step

    def _finish(self, request: SequenceState, final: NativeStep | BaseException) -> None:
        """Free the id and the slot (keeping slots compact), then emit the last output."""
        request.finished = True
        request.pending_token = None
        # Everything is freed before the caller can see the end: it may reuse the id at
        # once, and the engine's stats show nothing left of the request.
        with self._lock:
            if self._requests.get(request.request_id) is request:
                del self._requests[request.request_id]
        if request.slot >= 0:
            # Prefix caching switched off keeps nothing either (a later switch-on starts cold).
            kept = self.finished_sequences if self.enable_prefix_caching else None
            if kept is not None and not isinstance(final, BaseException):
                kept.keep(request, self.decoder.cache)
            slot = request.slot
            last = self._running.pop()
            if last is not request:
                self.decoder.cache.move(last.slot, slot, last.cached_len)
                last.slot = slot
                self._running[slot] = last
            request.slot = -1
        elif request in self._waiting:
            self._waiting.remove(request)
        request.sink(final)

    def on_stop(self, error: BaseException) -> None:
        with self._lock:
            pending = list(self._inbox)
            self._inbox.clear()
        for request in [*pending, *self._waiting, *self._running]:
            if not request.finished:
                request.finished = True
                request.sink(error)
        self._waiting.clear()
        self._running.clear()
        with self._lock:
            self._requests.clear()
            self._aborted.clear()
