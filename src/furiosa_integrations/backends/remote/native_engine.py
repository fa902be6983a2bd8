"""Our native engine protocol spoken over HTTP to an OpenAI-compatible server.

    caller's loop                         client loop (its own thread)
    stream_generate(ids, params, id) ---> stream_completion: POST /v1/completions
        <- NativeStep via LoopSink   <---     SSE chunk -> StepDecoder -> NativeStep
    closing the generator, abort_request   cancel the task: the HTTP stream closes and
                                           the server aborts the request
    encode(prompts, params, id)      ---> post_json: POST /v1/embeddings

Token ids in, token ids out: templates, tokenization, validation, tool-call constraints
and parsing, stop strings and detokenization stay in the shared engine, exactly as
in-process. What the server would silently ignore is refused before sending.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Collection, Sequence
from typing import Any

from ...core import (
    NativeEngineBase,
    NativeStats,
    NativeStep,
    PoolingParams,
    SamplingParams,
    Task,
    Tokenizer,
)
from ...errors import (
    DuplicateRequestIdError,
    InvalidRequestError,
    ServerDisconnectedError,
    ServerRequestError,
)
from .capabilities import ServerKind, check_sampling_params
from .client_loop import ClientLoop, LoopSink
from .config import RemoteConfig
from .http_requests import CLOSED, StreamHandle, post_json, stream_completion
from .retry import RetryPolicy
from .wire import StepDecoder, completion_body, embedding_body, vectors_from_response

logger = logging.getLogger(__name__)

_CLOSE_WAIT = 5.0  # seconds a closing stream waits for its HTTP request to end
_EMBED_BATCH = 64  # inputs per /v1/embeddings request (sent concurrently)


class RemoteNativeEngine(NativeEngineBase):
    """A model served by furiosa-llm, vLLM or another OpenAI-compatible server."""

    def __init__(
        self,
        config: RemoteConfig,
        *,
        task: Task,
        served_model_name: str,
        max_model_len: int,
        tokenizer: Tokenizer,
        eos_token_ids: Collection[int],
        server_kind: ServerKind,
        server_version: str | None = None,
    ) -> None:
        self.config = config
        self.task = task
        self.served_model_name = served_model_name
        self.max_model_len = int(max_model_len)
        self.tokenizer = tokenizer
        self.eos_token_ids = frozenset(eos_token_ids)
        self.server_kind = server_kind
        self.server_version = server_version
        self.policy = RetryPolicy(config.max_retries)
        self._client = ClientLoop(config)
        self._lock = threading.Lock()
        self._streams: dict[str, StreamHandle] = {}
        self._posts = 0  # embedding requests in flight

    def __repr__(self) -> str:
        return (
            f"RemoteNativeEngine({self.config.display_url!r}, model={self.served_model_name!r}, "
            f"server={self.server_kind} {self.server_version or ''})"
        )

    # ---- facts and checks ----

    def check_sampling_params(self, params: SamplingParams) -> None:
        check_sampling_params(params, self.server_kind)

    def is_alive(self) -> bool:
        return self._client.is_alive()

    def check_alive(self) -> None:
        self._client.check_alive()

    def stats(self) -> NativeStats:
        """What is in flight on our side (the server keeps its own counts)."""
        with self._lock:
            streams, posts = len(self._streams), self._posts
        return NativeStats(
            running=streams + posts, waiting=0, used_cache_slots=0, request_ids=streams + posts
        )

    def abort_request(self, request_id: str) -> None:
        """Close the request's HTTP stream (the server aborts it); unknown ids are ignored.
        Callable from any thread."""
        with self._lock:
            handle = self._streams.get(request_id)
        if handle is None:
            return
        handle.aborted = True
        self._cancel(handle)

    def shutdown(self) -> None:
        self._client.close()

    # ---- generation ----

    async def stream_generate(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        request_id: str,
        images: Sequence[Any] = (),
    ) -> AsyncGenerator[NativeStep, None]:
        if images:
            raise InvalidRequestError("The served backend does not take images")
        body = completion_body(
            prompt_token_ids,
            params,
            model=self.served_model_name,
            max_model_len=self.max_model_len,
            eos_token_ids=self.eos_token_ids,
        )
        decoder = StepDecoder(
            len(prompt_token_ids),
            self.eos_token_ids | set(params.stop_token_ids or ()),
            params.logprobs,
            self.config.display_url + "/v1/completions",
        )
        queue: asyncio.Queue[Any] = asyncio.Queue()
        handle = StreamHandle(request_id, LoopSink(asyncio.get_running_loop(), queue.put_nowait))
        self._register(handle)
        try:
            self._client.call_soon(self._start, handle, body, decoder)
        except BaseException:
            self._unregister(handle)
            raise
        finished = closed = False
        try:
            while True:
                item = await queue.get()
                if item is CLOSED:
                    closed = True
                    break
                if isinstance(item, BaseException):
                    raise item
                finished = item.finish_reason is not None
                yield item
                if finished:
                    return
            if handle.aborted:  # abort_request closed the stream
                finished = True
                yield NativeStep([], finish_reason="abort", num_prompt_tokens=len(prompt_token_ids))
                return
            raise ServerDisconnectedError(
                f"{self.config.display_url}: the stream ended before the completion finished"
            )
        finally:
            try:
                if not closed:
                    await self._close(handle, queue, finished)
            finally:
                self._unregister(handle)

    def _start(self, handle: StreamHandle, body: dict[str, Any], decoder: StepDecoder) -> None:
        """On the client loop: start the request (unless it was cancelled first)."""
        if handle.cancelled:
            handle.sink(CLOSED)
            return
        assert self._client.client is not None
        coro = stream_completion(
            self._client.client, self.config, self.policy, body, decoder, handle
        )
        handle.task = self._client.create_task(coro)
        handle.task.add_done_callback(handle.on_done)

    def _cancel(self, handle: StreamHandle) -> None:
        try:
            self._client.call_soon(handle.cancel_on_loop)
        except Exception:  # the client loop is gone: so is the stream
            pass

    async def _close(self, handle: StreamHandle, queue: asyncio.Queue[Any], finished: bool) -> None:
        """Stop the request if it still runs, and wait until its HTTP stream is closed, so
        nothing is left in flight when the caller's call returns."""
        if not finished:
            self._cancel(handle)
        loop = asyncio.get_running_loop()
        end = loop.time() + _CLOSE_WAIT
        try:
            while await asyncio.wait_for(queue.get(), max(end - loop.time(), 0.0)) is not CLOSED:
                pass  # a step or an error that came after the caller stopped listening
        except asyncio.CancelledError:
            self._cancel(handle)  # cancelled while waiting: still close the stream
            raise
        except (asyncio.TimeoutError, RuntimeError):
            self._cancel(handle)
            logger.warning("request %s: the HTTP stream did not close in time", handle.request_id)

    def _register(self, handle: StreamHandle) -> None:
        with self._lock:
            if handle.request_id in self._streams:
                raise DuplicateRequestIdError(
                    f"Request id {handle.request_id!r} is already in flight"
                )
            self._streams[handle.request_id] = handle

    def _unregister(self, handle: StreamHandle) -> None:
        with self._lock:
            if self._streams.get(handle.request_id) is handle:
                del self._streams[handle.request_id]

    # ---- pooling ----

    async def encode(
        self, prompts: list[list[int]], params: PoolingParams, request_id: str
    ) -> list[list[float]]:
        with self._lock:
            self._posts += 1
        try:
            return await self._client.run(self._embed(prompts, params))
        finally:
            with self._lock:
                self._posts -= 1

    async def _embed(self, prompts: list[list[int]], params: PoolingParams) -> list[list[float]]:
        """On the client loop: the batches as concurrent requests, vectors in input order."""
        batches = [prompts[i : i + _EMBED_BATCH] for i in range(0, len(prompts), _EMBED_BATCH)]
        results = await asyncio.gather(*(self._embed_batch(b, params) for b in batches))
        return [vector for batch in results for vector in batch]

    async def _embed_batch(
        self, prompts: list[list[int]], params: PoolingParams
    ) -> list[list[float]]:
        assert self._client.client is not None
        route = "/v1/embeddings"
        body = embedding_body(prompts, params, model=self.served_model_name, kind=self.server_kind)
        try:
            data = await post_json(self._client.client, self.config, self.policy, route, body)
        except ServerRequestError as exc:
            if exc.status_code == 404:
                raise ServerRequestError(
                    f"{exc} -- this server has no {route} route: `furiosa-llm route` does not "
                    "proxy embeddings; point base_url at the `furiosa-llm serve` (or vLLM) "
                    "instance that hosts the embedding model",
                    status_code=404,
                ) from exc
            raise
        return vectors_from_response(data, len(prompts), self.config.display_url + route)


__all__ = ["RemoteNativeEngine"]
