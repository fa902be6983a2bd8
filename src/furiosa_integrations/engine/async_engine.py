"""The shared async engine: one per model per process, used by every adapter.

It is backend-neutral. Text in (a prompt, token ids, or chat messages), chunks out;
everything between the text and the native engine's tokens lives here: rendering,
tokenization, validation before dispatch, request ids, detokenization, stop strings,
tool-call parsing, usage, and aborting the native request on every early exit.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

from .admission import Admission, WhenFull
from .chat import apply_template, image_parts, normalize_messages
from .errors import (
    ContextLengthExceededError,
    DuplicateRequestIdError,
    EngineDeadError,
    InvalidRequestError,
    UnsupportedTaskError,
)
from .output_processor import CompletionProcessor, TextParser
from .outputs import Completion, GenerationChunk, GenerationResult, Usage
from .protocol import NativeEngine, NativeStats, NativeStep
from .reasoning import reasoning_parser_factory
from .sampling import PoolingParams, SamplingParams
from .sync_bridge import iterate_sync, run_sync
from .tool_calling import (
    needs_tool_prompt,
    normalize_tool_choice,
    normalize_tools,
    plan_tool_request,
    render_tool_prompt,
)

Prompt = str | Sequence[int]


class _Prepared:
    """A validated generation request, ready to dispatch."""

    __slots__ = ("images", "params", "parser_factory", "prompt", "prompt_token_ids", "request_id")

    def __init__(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: list[int],
        params: SamplingParams,
        parser_factory: Any,
        images: list[Any] | None = None,
    ) -> None:
        self.images = images or []
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = prompt_token_ids
        self.params = params
        self.parser_factory = parser_factory


class AsyncEngine:
    """Async generation and pooling over one native engine.

    Build it with ``get_engine`` (shared per model) or directly around a native engine.
    """

    def __init__(
        self,
        native: NativeEngine,
        tokenizer: Any,
        model_name: str,
        *,
        backend: str = "torch",
        supports_images: bool = False,
        max_pending_requests: int | None = None,
        when_full: WhenFull = "wait",
    ) -> None:
        self.native = native
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.backend = backend
        self.supports_images = supports_images
        self.task = native.task
        self._request_ids: set[str] = set()
        self._native_ids: dict[str, list[str]] = {}  # n > 1 runs as native ids "id:0", "id:1", ...
        self._counter = itertools.count()
        self.admission = Admission(max_pending_requests, when_full)

    def set_backpressure(
        self, max_pending_requests: int | None, when_full: WhenFull = "wait"
    ) -> None:
        """Limit requests in flight; past it callers wait, or get ``EngineOverloadedError``."""
        self.admission.configure(max_pending_requests, when_full)

    # ---- model facts ----

    @property
    def max_model_len(self) -> int:
        return self.native.max_model_len

    def is_alive(self) -> bool:
        return self.native.is_alive()

    def stats(self) -> NativeStats:
        """In-flight bookkeeping of the native engine plus our own request ids."""
        native = self.native.stats()
        return NativeStats(
            running=native.running,
            waiting=native.waiting,
            used_cache_slots=native.used_cache_slots,
            request_ids=max(native.request_ids, len(self._request_ids)),
        )

    def shutdown(self) -> None:
        self.native.shutdown()

    # ---- text <-> tokens ----

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def render_chat(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        add_generation_prompt: bool = True,
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> str:
        """The prompt a request with these ``messages`` (and ``tools``) is rendered to."""
        normalized = normalize_messages(messages)
        if needs_tool_prompt(normalized, tools, tool_choice):
            offered = normalize_tools(list(tools or []))
            return render_tool_prompt(
                self.tokenizer,
                normalized,
                offered,
                normalize_tool_choice(tool_choice, offered),
                chat_template_kwargs,
                add_generation_prompt=add_generation_prompt,
            )
        return apply_template(
            self.tokenizer,
            normalized,
            add_generation_prompt=add_generation_prompt,
            **(chat_template_kwargs or {}),
        )

    # ---- generation ----

    def _check_serving(self) -> None:
        """Dead engines and full queues say so before anything is queued."""
        if not self.native.is_alive():
            check = getattr(self.native, "check_alive", None)
            if check is not None:
                check()  # raises EngineDeadError with the cause (shut down, or the crash)
            raise EngineDeadError(f"The engine for {self.model_name} is not running")
        self.admission.check()

    def _new_request_id(self) -> str:
        return f"req-{uuid.uuid4().hex[:12]}-{next(self._counter)}"

    def _prepare(
        self,
        prompt: Prompt | None,
        messages: Sequence[dict[str, Any]] | None,
        params: SamplingParams | None,
        tools: list[dict[str, Any]] | None,
        tool_choice: Any,
        request_id: str | None,
        chat_template_kwargs: dict[str, Any] | None,
        images: Sequence[Any] | None = None,
        parallel_tool_calls: bool = True,
    ) -> _Prepared:
        if self.task != "generate":
            raise UnsupportedTaskError(
                f"{self.model_name} is an embedding model; it does not support text generation"
            )
        self._check_serving()
        params = params if params is not None else SamplingParams()
        if not isinstance(params, SamplingParams):
            raise InvalidRequestError(f"params must be SamplingParams, got {type(params).__name__}")
        params.verify()
        check_params = getattr(self.native, "check_sampling_params", None)
        if check_params is not None:  # backend limits (the furiosa backend's option ranges)
            check_params(params)
        if (prompt is None) == (messages is None):
            raise InvalidRequestError("Give exactly one of prompt or messages")
        if not isinstance(parallel_tool_calls, bool):
            raise InvalidRequestError(
                f"parallel_tool_calls must be a bool, got {parallel_tool_calls!r}"
            )
        loaded_images = self._load_images(messages, images)
        parser_factory = None
        text: str | None
        if messages is not None:
            normalized = normalize_messages(messages, allow_images=self.supports_images)
            if needs_tool_prompt(normalized, tools, tool_choice):
                plan = plan_tool_request(
                    self,
                    normalized,
                    list(tools or []),
                    tool_choice,
                    params,
                    chat_template_kwargs,
                    parallel_tool_calls=parallel_tool_calls,
                )
                text, params, parser_factory = plan.prompt, plan.params, plan.parser_factory
            else:
                text = apply_template(self.tokenizer, normalized, **(chat_template_kwargs or {}))
                parser_factory = reasoning_parser_factory(
                    self.tokenizer, text, chat_template_kwargs
                )
            token_ids = self.tokenize(text)
        elif isinstance(prompt, str):
            if not prompt:
                raise InvalidRequestError("prompt must be a non-empty string")
            text, token_ids = prompt, self.tokenize(prompt)
        elif isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
            token_ids = list(cast(Sequence[int], prompt))
            if not token_ids or not all(
                isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in token_ids
            ):
                raise InvalidRequestError("prompt token ids must be a non-empty list of ints >= 0")
            text = None
        else:
            raise InvalidRequestError(
                f"prompt must be a string or a list of token ids, got {type(prompt).__name__}"
            )
        if not token_ids:
            raise InvalidRequestError("The prompt is empty after tokenization")
        needed = len(token_ids) + (params.max_tokens or 1)
        if needed > self.max_model_len:
            raise ContextLengthExceededError(
                max_model_len=self.max_model_len,
                prompt_tokens=len(token_ids),
                max_tokens=params.max_tokens,
            )
        if params.structured_outputs is not None:
            self._check_structured(params)
        if request_id is None:
            request_id = self._new_request_id()
        elif not isinstance(request_id, str) or not request_id:
            raise InvalidRequestError("request_id must be a non-empty string")
        if request_id in self._request_ids:
            raise DuplicateRequestIdError(f"Request id {request_id!r} is already in flight")
        return _Prepared(request_id, text, token_ids, params, parser_factory, loaded_images)

    def _load_images(
        self, messages: Sequence[dict[str, Any]] | None, images: Sequence[Any] | None
    ) -> list[Any]:
        """Images of a request, for a model that accepts them; a clear error otherwise."""
        parts = image_parts(messages) if messages is not None else []
        if not parts and not images:
            return []
        if not self.supports_images:
            raise InvalidRequestError(
                f"{self.model_name} is a text-only model: image inputs are not supported"
            )
        from .images import load_image

        return [load_image(part) for part in parts] + list(images or [])

    def _check_structured(self, params: SamplingParams) -> None:
        """Compile the constraint now so a bad schema fails before queuing (backend hook)."""
        check = getattr(self.native, "check_structured_outputs", None)
        if check is not None:
            check(params.structured_outputs)

    def stream(
        self,
        prompt: Prompt | None = None,
        *,
        messages: Sequence[dict[str, Any]] | None = None,
        params: SamplingParams | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        parallel_tool_calls: bool = True,
        request_id: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        images: Sequence[Any] | None = None,
    ) -> AsyncIterator[GenerationChunk]:
        """Stream chunks of new text. Validation happens here, before anything is queued.

        Stopping iteration early (break, ``aclose``, task cancellation) aborts the
        request in the native engine and releases its id. ``parallel_tool_calls=False``
        (OpenAI's option) allows at most one tool call per turn. ``images`` go with a plain
        prompt that already holds the model's image placeholders (image-capable models only).
        """
        prepared = self._prepare(
            prompt,
            messages,
            params,
            tools,
            tool_choice,
            request_id,
            chat_template_kwargs,
            images,
            parallel_tool_calls=parallel_tool_calls,
        )
        return self._run(prepared)

    async def _run(self, prepared: _Prepared) -> AsyncIterator[GenerationChunk]:
        # The id is claimed on first iteration, so a stream that is never iterated holds nothing.
        if prepared.request_id in self._request_ids:
            raise DuplicateRequestIdError(
                f"Request id {prepared.request_id!r} is already in flight"
            )
        self._request_ids.add(prepared.request_id)
        try:
            await self.admission.acquire()
        except BaseException:
            self._request_ids.discard(prepared.request_id)
            raise
        admitted = self._run_admitted(prepared)
        try:
            async for chunk in admitted:
                yield chunk
        finally:
            try:
                await admitted.aclose()  # type: ignore[attr-defined]  # abort now, not at GC
            finally:
                self.admission.release()

    async def _run_admitted(self, prepared: _Prepared) -> AsyncIterator[GenerationChunk]:
        params = prepared.params
        n = params.n
        ids = [prepared.request_id] if n == 1 else [f"{prepared.request_id}:{i}" for i in range(n)]
        self._native_ids[prepared.request_id] = ids
        processors = [
            CompletionProcessor(
                self.tokenizer,
                prepared.request_id,
                i,
                prepared.prompt_token_ids,
                params,
                prepared.parser_factory() if prepared.parser_factory else None,
            )
            for i in range(n)
        ]
        per_sample = [params] if n == 1 else [self._sample_params(params, i) for i in range(n)]
        if n == 1:
            steps = self._steps_one(
                prepared.prompt_token_ids, per_sample[0], ids[0], prepared.images
            )
        else:
            steps = self._steps_merged(prepared.prompt_token_ids, per_sample, ids, prepared.images)
        try:
            remaining = n
            async for index, step in steps:
                processor = processors[index]
                if processor.finished:
                    continue
                chunk = processor.process(step)
                if processor.finished:
                    remaining -= 1
                    if step.finish_reason is None:  # a stop string ended it early
                        self.native.abort_request(ids[index])
                    if remaining == 0:
                        chunk.usage = Usage(
                            prompt_tokens=len(prepared.prompt_token_ids),
                            completion_tokens=sum(p.num_output_tokens for p in processors),
                            cached_tokens=max(p.num_cached_tokens for p in processors),
                        )
                if (
                    chunk.text
                    or chunk.token_ids
                    or chunk.finish_reason
                    or chunk.tool_calls
                    or chunk.reasoning_text
                ):
                    yield chunk
                if remaining == 0:
                    return
        finally:
            for native_id, processor in zip(ids, processors, strict=True):
                if not processor.finished:
                    self.native.abort_request(native_id)
            self._request_ids.discard(prepared.request_id)
            self._native_ids.pop(prepared.request_id, None)
            await steps.aclose()  # type: ignore[attr-defined]

    @staticmethod
    def _sample_params(params: SamplingParams, index: int) -> SamplingParams:
        """Each of ``n`` samples runs as its own native request; seeds differ per sample."""
        seed = None if params.seed is None else params.seed + index
        return params.clone(n=1, seed=seed)

    def _native_stream(
        self, prompt_ids: list[int], params: SamplingParams, native_id: str, images: list[Any]
    ) -> AsyncIterator[NativeStep]:
        if images:  # only image-capable backends take (and get) this argument
            return self.native.stream_generate(prompt_ids, params, native_id, images=images)  # type: ignore[call-arg]
        return self.native.stream_generate(prompt_ids, params, native_id)

    async def _steps_one(
        self, prompt_ids: list[int], params: SamplingParams, native_id: str, images: list[Any]
    ) -> AsyncIterator[tuple[int, NativeStep]]:
        stream = self._native_stream(prompt_ids, params, native_id, images)
        try:
            async for step in stream:
                yield 0, step
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def _steps_merged(
        self,
        prompt_ids: list[int],
        per_sample: list[SamplingParams],
        ids: list[str],
        images: list[Any],
    ) -> AsyncIterator[tuple[int, NativeStep]]:
        queue: asyncio.Queue[tuple[int, NativeStep] | BaseException | None] = asyncio.Queue()

        async def pump(index: int) -> None:
            try:
                stream = self._native_stream(prompt_ids, per_sample[index], ids[index], images)
                async for step in stream:
                    await queue.put((index, step))
            except BaseException as exc:
                await queue.put(exc)
                raise
            finally:
                await queue.put(None)

        tasks = [asyncio.create_task(pump(i)) for i in range(len(ids))]
        try:
            done = 0
            while done < len(tasks):
                item = await queue.get()
                if item is None:
                    done += 1
                elif isinstance(item, BaseException):
                    if not isinstance(item, asyncio.CancelledError):
                        raise item
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def generate(self, prompt: Prompt | None = None, **request: Any) -> GenerationResult:
        """The whole result at once: ``stream`` (same arguments: ``messages``, ``params``,
        ``tools``, ``tool_choice``, ``parallel_tool_calls``, ...) aggregated."""
        stream = self.stream(prompt, **request)
        params = request.get("params")
        request_id = request.get("request_id")
        n = (params or SamplingParams()).n
        outputs = [Completion(index=i) for i in range(n)]
        usage = Usage()
        rid = request_id or ""
        async for chunk in stream:
            rid = chunk.request_id
            outputs[chunk.index].add(chunk)
            if chunk.usage is not None:
                usage = chunk.usage
        return GenerationResult(request_id=rid, outputs=outputs, usage=usage)

    async def abort(self, request_id: str) -> None:
        """Abort a request by id; its stream ends with ``finish_reason="abort"``."""
        for native_id in self._native_ids.get(request_id, [request_id]):
            self.native.abort_request(native_id)

    # ---- pooling ----

    def prepare_embed(
        self, texts: Sequence[str | Sequence[int]], params: PoolingParams
    ) -> list[list[int]]:
        """Validate and tokenize embedding inputs now, before anything is queued.

        Each input is a text or a list of token ids (kept as given, truncated like text).
        """
        if self.task != "embed":
            raise UnsupportedTaskError(
                f"{self.model_name} is a generation model; it does not support embeddings"
            )
        self._check_serving()
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidRequestError("texts must be a list of strings")
        if not texts:
            raise InvalidRequestError("texts must not be empty")
        token_inputs: dict[int, list[int]] = {}
        for i, text in enumerate(texts):
            if isinstance(text, Sequence) and not isinstance(text, (str, bytes)):
                ids = list(text)
                if not ids or not all(
                    isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ids
                ):
                    raise InvalidRequestError(
                        f"texts[{i}] as token ids must be a non-empty list of ints >= 0"
                    )
                token_inputs[i] = ids
            elif not isinstance(text, str):
                raise InvalidRequestError(f"texts[{i}] must be a string, got {type(text).__name__}")
        params.verify()
        limit = self.max_model_len
        if params.truncate_prompt_tokens not in (None, -1):
            limit = min(limit, int(params.truncate_prompt_tokens))  # type: ignore[arg-type]
        truncate = params.truncate_prompt_tokens is not None
        strings = [t for i, t in enumerate(texts) if i not in token_inputs]
        encoded_strings = iter(
            self.tokenizer(strings, add_special_tokens=True, truncation=truncate, max_length=limit)[
                "input_ids"
            ]
            if strings
            else []
        )
        encoded = [
            (token_inputs[i][:limit] if truncate else token_inputs[i])
            if i in token_inputs
            else next(encoded_strings)
            for i in range(len(texts))
        ]
        for ids in encoded:
            if len(ids) > self.max_model_len:
                raise ContextLengthExceededError(
                    max_model_len=self.max_model_len, prompt_tokens=len(ids), max_tokens=None
                )
        return [list(ids) for ids in encoded]

    async def embed(
        self,
        texts: Sequence[str],
        params: PoolingParams | None = None,
        request_id: str | None = None,
    ) -> list[list[float]]:
        """One vector per text, in order, from one batched native call."""
        params = params if params is not None else PoolingParams()
        return await self.embed_prepared(self.prepare_embed(texts, params), params, request_id)

    async def embed_prepared(
        self, prompts: list[list[int]], params: PoolingParams, request_id: str | None = None
    ) -> list[list[float]]:
        """``embed`` for inputs that ``prepare_embed`` has already checked and tokenized."""
        request_id = request_id or self._new_request_id()
        if request_id in self._request_ids:
            raise DuplicateRequestIdError(f"Request id {request_id!r} is already in flight")
        self._request_ids.add(request_id)
        try:
            await self.admission.acquire()
        except BaseException:
            self._request_ids.discard(request_id)
            raise
        try:
            return await self.native.encode(prompts, params, request_id)
        finally:
            self.admission.release()
            self._request_ids.discard(request_id)

    # ---- sync bridge (for the frameworks' sync methods) ----

    def generate_sync(self, *args: Any, **kwargs: Any) -> GenerationResult:
        return run_sync(self.generate(*args, **kwargs))

    def stream_sync(self, *args: Any, **kwargs: Any) -> Iterator[GenerationChunk]:
        # Validate on the caller's thread so bad input raises at the call, not at iteration.
        stream = self.stream(*args, **kwargs)
        return iterate_sync(stream)

    def embed_sync(
        self, texts: Sequence[str], params: PoolingParams | None = None
    ) -> list[list[float]]:
        return run_sync(self.embed(texts, params))


__all__ = ["AsyncEngine", "TextParser"]
