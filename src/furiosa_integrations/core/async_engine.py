"""The shared async engine: one per model per process, used by every adapter.

It is backend-neutral and wires the request's way through:

    caller -> InputProcessor -> EngineRequest            (typed errors before queuing)
           -> RequestTracker: Claim                      (request id + admission place)
           -> native engine (n samples, parallel_sampling)
           -> CompletionProcessor -> GenerationChunk      (text, tool calls, usage)

and back; every exit path (end, error, break, ``aclose``, cancellation) aborts what is
still running natively and frees the id before the call that ended it returns
(``RequestStream`` does it synchronously, even right after a ``break``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from typing import Any, TypeVar

from .admission import Admission, WhenFull
from .input_processor import EngineRequest, InputProcessor, Prompt
from .output_processor import CompletionProcessor
from .outputs import Completion, GenerationChunk, GenerationResult, Usage
from .parallel_sampling import OpenStream, merged_steps, sample_ids, sample_params
from .protocol import NativeEngine, NativeStats, NativeStep
from .request_lifecycle import Claim, RequestTracker
from .request_stream import RequestStream
from .sampling_params import PoolingParams, SamplingParams
from .sync_bridge import iterate_sync, run_sync
from .text.reasoning_switch import Reasoning
from .tokenizer import Tokenizer

T = TypeVar("T")


class AsyncEngine:
    """Async generation and pooling over one native engine.

    Build it with ``get_engine`` (shared per model) or directly around a native engine.
    """

    def __init__(
        self,
        native: NativeEngine,
        tokenizer: Tokenizer,
        model_name: str,
        *,
        backend: str = "torch",
        max_pending_requests: int | None = None,
        when_full: WhenFull = "wait",
    ) -> None:
        self.native = native
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.backend = backend
        self.supports_images = native.supports_images
        self.task = native.task
        self.admission = Admission(max_pending_requests, when_full)
        self.requests = RequestTracker(self.admission)
        self.input_processor = InputProcessor(
            native, tokenizer, model_name, self.requests, supports_images=self.supports_images
        )

    def set_backpressure(
        self, max_pending_requests: int | None, when_full: WhenFull = "wait"
    ) -> None:
        """Limit requests in flight; past it callers wait, or get ``EngineOverloadedError``."""
        self.admission.configure(max_pending_requests, when_full)

    # ---- model facts ----

    @property
    def max_model_len(self) -> int:
        return self.native.max_model_len

    @property
    def template_renders_tools(self) -> bool:
        """Whether the model's chat template renders tools itself (models trained to decide
        when to call one); otherwise tools go in a system prompt of ours."""
        return self.input_processor.template_renders_tools

    def renders_tools(self, chat_template_kwargs: dict[str, Any] | None = None) -> bool:
        """``template_renders_tools`` for the template a request with these
        ``chat_template_kwargs`` renders with (``{"chat_template": ...}`` overrides it)."""
        return self.input_processor.renders_tools(chat_template_kwargs)

    def template_has_thinking(self, chat_template_kwargs: dict[str, Any] | None = None) -> bool:
        """Whether the chat template (the model's, or ``chat_template_kwargs``'s
        ``chat_template``) has a thinking section: reasoning comes back apart from the
        answer (``reasoning_text``)."""
        return self.input_processor.template_has_thinking(chat_template_kwargs)

    def is_alive(self) -> bool:
        return self.native.is_alive()

    def stats(self) -> NativeStats:
        """In-flight bookkeeping of the native engine plus our own request ids."""
        native = self.native.stats()
        return NativeStats(
            running=native.running,
            waiting=native.waiting,
            used_cache_slots=native.used_cache_slots,
            request_ids=max(native.request_ids, len(self.requests)),
        )

    def shutdown(self) -> None:
        self.native.shutdown()

    # ---- text <-> tokens ----

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.input_processor.tokenize(text, add_special_tokens)

    def render_chat(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        add_generation_prompt: bool = True,
        chat_template_kwargs: dict[str, Any] | None = None,
        tool_call_format: str | None = None,
        reasoning: Reasoning = None,
    ) -> str:
        """The prompt a request with these ``messages`` (and ``tools``) is rendered to."""
        return self.input_processor.render_chat(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            add_generation_prompt=add_generation_prompt,
            chat_template_kwargs=chat_template_kwargs,
            tool_call_format=tool_call_format,
            reasoning=reasoning,
        )

    def prompt_token_ids(self, prompt: Prompt | None = None, **inputs: Any) -> list[int]:
        """The prompt token ids that ``stream`` sends to the model for the same ``prompt`` or
        ``messages``, ``tools``, ``tool_choice`` and ``chat_template_kwargs`` (nothing is
        queued): the template, tool prompt and special tokens included."""
        return self.input_processor.prompt_token_ids(prompt, **inputs)

    def count_prompt_tokens(self, prompt: Prompt | None = None, **inputs: Any) -> int:
        """How many tokens that prompt is: a request's ``usage.prompt_tokens``."""
        return len(self.prompt_token_ids(prompt, **inputs))

    # ---- generation ----

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
        tool_call_format: str | None = None,
        reasoning: Reasoning = None,
    ) -> RequestStream[GenerationChunk]:
        """Stream chunks of new text. Validation happens here, before anything is queued.

        Stopping iteration early (break, ``aclose``, task cancellation) aborts the
        request in the native engine and releases its id. ``parallel_tool_calls=False``
        (OpenAI's option) allows at most one tool call per turn. ``tool_call_format``
        names the call syntax (``hermes``, ``llama3_json``, ``mistral``, ``qwen3_xml``)
        instead of the one the chat template writes. ``reasoning``: thinking on
        (``True``), off (``False``) or an effort level, on the template's own switch
        (``None``: the template's default). ``images`` go with a plain prompt that already
        holds the model's image placeholders (image-capable models only).
        """
        request = self.input_processor.process_generation(
            prompt,
            messages=messages,
            params=params,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            request_id=request_id,
            chat_template_kwargs=chat_template_kwargs,
            images=images,
            tool_call_format=tool_call_format,
            reasoning=reasoning,
        )
        held: list[Claim] = []  # the run's claim, once it has started
        return RequestStream(self._run(request, held), lambda: self._abandon(held))

    async def _run(
        self, request: EngineRequest, held: list[Claim]
    ) -> AsyncGenerator[GenerationChunk, None]:
        params = request.params
        ids = sample_ids(request.request_id, params.n)
        # 1. Take the id, then a place; both are given back however this run ends.
        #    (Taken on first iteration: a stream that is never iterated holds nothing.)
        claim = self.requests.hold(request.request_id, ids)
        held.append(claim)
        processors = [
            CompletionProcessor(
                self.tokenizer,
                request.request_id,
                i,
                request.prompt_token_ids,
                params,
                request.parser_factory() if request.parser_factory else None,
            )
            for i in range(params.n)
        ]
        steps = merged_steps(self._opener(request), sample_params(params), ids)
        try:
            await self.requests.admit(claim)
            # 2. Native steps -> chunks; the request's last chunk carries its usage.
            remaining = params.n
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
                        chunk.usage = _usage(request, processors)
                if _carries_anything(chunk):
                    yield chunk
                if remaining == 0:
                    return
        finally:
            # 3. Abort what still runs natively and free the id now; then close the streams.
            unfinished = [i for i, p in zip(ids, processors, strict=True) if not p.finished]
            self._end(claim, unfinished)
            await steps.aclose()

    def _abandon(self, held: list[Claim]) -> None:
        """A consumer let go of a stream: abort every native request it runs as, free it."""
        for claim in held:
            self._end(claim, claim.native_ids)

    def _end(self, claim: Claim, abort: list[str]) -> None:
        if claim.released:
            return
        for native_id in abort:  # an id the native engine no longer knows is ignored
            self.native.abort_request(native_id)
        self.requests.release(claim)

    def _opener(self, request: EngineRequest) -> OpenStream:
        def open_stream(params: SamplingParams, native_id: str) -> AsyncGenerator[NativeStep, None]:
            return self.native.stream_generate(
                request.prompt_token_ids, params, native_id, images=request.images
            )

        return open_stream

    async def generate(self, prompt: Prompt | None = None, **request: Any) -> GenerationResult:
        """The whole result at once: ``stream`` (same arguments: ``messages``, ``params``,
        ``tools``, ``tool_choice``, ``parallel_tool_calls``, ...) aggregated."""
        stream = self.stream(prompt, **request)
        n = (request.get("params") or SamplingParams()).n
        outputs = [Completion(index=i) for i in range(n)]
        usage = Usage()
        request_id = request.get("request_id") or ""
        async for chunk in stream:
            request_id = chunk.request_id
            outputs[chunk.index].add(chunk)
            if chunk.usage is not None:
                usage = chunk.usage
        return GenerationResult(request_id=request_id, outputs=outputs, usage=usage)

    async def abort(self, request_id: str) -> None:
        """Abort a request by id; its stream ends with ``finish_reason="abort"``."""
        for native_id in self.requests.native_ids(request_id):
            self.native.abort_request(native_id)

    # ---- pooling ----

    def prepare_embed(
        self, texts: Sequence[str | Sequence[int]], params: PoolingParams
    ) -> list[list[int]]:
        """Validate and tokenize embedding inputs now, before anything is queued.

        Each input is a text or a list of token ids (kept as given, truncated like text).
        """
        return self.input_processor.process_pooling(texts, params)

    async def embed(
        self,
        texts: Sequence[str | Sequence[int]],
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
        return await self._one_call(
            request_id, lambda native_id: self.native.encode(prompts, params, native_id)
        )

    async def score(
        self,
        query: str | Sequence[str],
        documents: Sequence[str],
        params: PoolingParams | None = None,
        request_id: str | None = None,
    ) -> list[float]:
        """How relevant each document is to ``query`` (a cross-encoder's score), in order:
        one query for every document, or one query per document. One batched native call;
        concurrent calls share forward passes."""
        params = params if params is not None else PoolingParams()
        pairs = self.input_processor.process_scoring(query, documents, params)
        return await self._one_call(
            request_id, lambda native_id: self.native.score(pairs, params, native_id)
        )

    async def _one_call(self, request_id: str | None, call: Callable[[str], Awaitable[T]]) -> T:
        """A pooling call under a request id and an admission place, both freed after."""
        claim = self.requests.hold(self.requests.check_new(request_id))
        try:
            await self.requests.admit(claim)
            return await call(claim.request_id)
        finally:
            self.requests.release(claim)

    # ---- sync bridge (for the frameworks' sync methods) ----

    def generate_sync(self, *args: Any, **kwargs: Any) -> GenerationResult:
        return run_sync(self.generate(*args, **kwargs))

    def stream_sync(self, *args: Any, **kwargs: Any) -> Generator[GenerationChunk, None, None]:
        # Validate on the caller's thread so bad input raises at the call, not at iteration.
        stream = self.stream(*args, **kwargs)
        return iterate_sync(stream)

    def embed_sync(
        self, texts: Sequence[str | Sequence[int]], params: PoolingParams | None = None
    ) -> list[list[float]]:
        return run_sync(self.embed(texts, params))

    def score_sync(self, *args: Any, **kwargs: Any) -> list[float]:
        return run_sync(self.score(*args, **kwargs))


def _usage(request: EngineRequest, processors: list[CompletionProcessor]) -> Usage:
    return Usage(
        prompt_tokens=len(request.prompt_token_ids),
        completion_tokens=sum(p.num_output_tokens for p in processors),
        cached_tokens=max(p.num_cached_tokens for p in processors),
    )


def _carries_anything(chunk: GenerationChunk) -> bool:
    return bool(
        chunk.text or chunk.token_ids or chunk.finish_reason or chunk.tool_calls
        or chunk.reasoning_text
    )  # fmt: skip


__all__ = ["AsyncEngine"]
