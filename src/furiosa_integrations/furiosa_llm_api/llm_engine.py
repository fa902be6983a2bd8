"""furiosa-llm's synchronous ``LLMEngine`` (vLLM's API), on top of the shared ``AsyncEngine``.

As in furiosa-llm, ``add_request`` starts work at once on a background event-loop thread
and ``step`` returns what has arrived since the last call; the engine batches
continuously on its own, so ``step`` drives nothing. Unlike furiosa-llm's own, an aborted or
failed request always gives its id back, in this wrapper and in the engine below.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import weakref
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass

from ..core import AsyncEngine, PoolingParams, SamplingParams
from ..errors import DuplicateRequestIdError, EngineDeadError, InvalidRequestError
from .async_llm_engine import AsyncLLMEngine, PromptType
from .llm_engine_base import LLMEngineBase
from .request_output import PoolingRequestOutput, RequestOutput

Output = RequestOutput | PoolingRequestOutput


@dataclass
class _Failure:
    """A request that failed after it was accepted; ``step`` raises its error."""

    request_id: str
    error: BaseException


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if loop.is_closed():
        return

    async def cancel_all() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # streams close: aborts, ids freed

    if thread.is_alive() and threading.current_thread() is not thread:
        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=10)
        except Exception:
            pass
    loop.call_soon_threadsafe(loop.stop)
    if threading.current_thread() is not thread:
        thread.join(timeout=10)


class LLMEngine(LLMEngineBase):
    """vLLM's ``LLMEngine`` API over the shared engine (any backend).

    Build it with ``from_engine_args``, ``from_engine`` (around an ``AsyncEngine``) or
    ``from_llm`` (around a furiosa-llm ``LLM``). Use it as a context manager, or call
    ``shutdown``, to stop its loop thread.
    """

    def __init__(self, engine: AsyncEngine, *, seed: int | None = None, owns_engine: bool = False):
        super().__init__(engine, seed=seed, owns_engine=owns_engine)
        # Requests go through the async API (its seeding and validation) on our loop thread;
        # this wrapper, not that one, owns the engine.
        self._api = AsyncLLMEngine(engine, seed=seed)
        self._outputs: queue.Queue[Output | _Failure] = queue.Queue()
        self._lock = threading.Lock()
        # Request ids not yet retired by ``step`` (finished, failed) or by an abort.
        self._active: dict[str, concurrent.futures.Future[None]] = {}
        self._held_failure: _Failure | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=_run_loop, args=(self._loop,), name="furiosa-llm-engine", daemon=True
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, _stop_loop, self._loop, self._thread)

    # ---- requests ----

    def add_request(
        self, request_id: str, prompt: PromptType, params: SamplingParams | PoolingParams
    ) -> None:
        """Validate and start a request now; its outputs arrive through ``step``.

        Invalid requests (bad options, a reused id, too long for the context, the wrong
        task for the model) raise a ``ValueError`` here and leave nothing behind.
        """
        if not isinstance(request_id, str) or not request_id:
            raise InvalidRequestError(f"Request ID {request_id!r} must be a non-empty string")
        if not isinstance(params, (SamplingParams, PoolingParams)):
            raise InvalidRequestError(
                f"Unsupported parameters type {type(params).__name__}: "
                "expected SamplingParams or PoolingParams"
            )
        if not self._finalizer.alive:
            raise EngineDeadError("This LLMEngine has been shut down")
        accepted: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            if request_id in self._active:
                raise DuplicateRequestIdError(f"Request ID {request_id!r} already exists")
            # Validation and start run on the loop thread, in the task that then iterates
            # the stream, so a started request always has someone to close it.
            task = asyncio.run_coroutine_threadsafe(
                self._serve(request_id, prompt, params, accepted), self._loop
            )
            self._active[request_id] = task
        # An abort may cancel the task before it starts: then there is nothing to wait for.
        concurrent.futures.wait([accepted, task], return_when=concurrent.futures.FIRST_COMPLETED)
        error = accepted.exception() if accepted.done() else None
        if error is not None:
            with self._lock:
                if self._active.get(request_id) is task:
                    del self._active[request_id]
            raise error

    async def _serve(
        self,
        request_id: str,
        prompt: PromptType,
        params: SamplingParams | PoolingParams,
        accepted: concurrent.futures.Future[None],
    ) -> None:
        try:
            if isinstance(params, SamplingParams):
                outputs: AsyncGenerator[RequestOutput, None] | None = self._api.open_generation(
                    prompt, params, request_id
                )
                encoding = None
            else:
                outputs = None
                encoding = self._api.prepare_encoding(prompt, params)
        except BaseException as exc:
            accepted.set_exception(exc)
            return
        accepted.set_result(None)
        try:
            if outputs is not None:
                await self._pump(outputs)
            else:
                assert encoding is not None
                self._outputs.put(await self._api.run_encoding(*encoding, request_id))
        except asyncio.CancelledError:
            raise  # aborted: nothing more to report
        except Exception as exc:
            self._outputs.put(_Failure(request_id, exc))

    async def _pump(self, outputs: AsyncGenerator[RequestOutput, None]) -> None:
        try:
            async for output in outputs:
                if output.finished:
                    # Close first, so the id is free in the engine before anyone sees the end.
                    await outputs.aclose()
                self._outputs.put(output)
        finally:
            await outputs.aclose()

    def abort_request(self, request_id: str | Iterable[str]) -> None:
        """Abort one request or many; unknown ids are ignored. Their outputs stop at once."""
        ids = [request_id] if isinstance(request_id, str) else list(request_id)
        for rid in ids:
            with self._lock:
                task = self._active.pop(rid, None)
            if task is not None:
                # Cancelling the task closes its stream: the native request is aborted
                # and the engine's request id freed.
                task.cancel()

    def has_unfinished_requests(self) -> bool:
        with self._lock:
            return bool(self._active)

    def get_num_unfinished_requests(self) -> int:
        with self._lock:
            return len(self._active)

    @property
    def request_ids(self) -> set[str]:
        with self._lock:
            return set(self._active)

    def step(self) -> list[Output]:
        """The outputs that arrived since the last call (waits for one if none has).

        Returns ``[]`` at once when no request is unfinished. A request that failed
        after it was accepted raises its error here (after earlier outputs are returned)
        and is retired.
        """
        outputs: list[Output] = []
        event: Output | _Failure | None = self._held_failure
        self._held_failure = None
        while event is None:
            if not self.has_unfinished_requests():
                return outputs
            try:
                event = self._outputs.get(timeout=0.05)
            except queue.Empty:
                continue
        while event is not None:
            with self._lock:
                live = event.request_id in self._active
            if live:  # outputs of aborted requests are dropped
                if isinstance(event, _Failure):
                    if outputs:
                        self._held_failure = event
                        return outputs
                    with self._lock:
                        self._active.pop(event.request_id, None)
                    raise event.error
                outputs.append(event)
                if event.finished:
                    with self._lock:
                        self._active.pop(event.request_id, None)
            try:
                event = self._outputs.get_nowait()
            except queue.Empty:
                event = None
        return outputs

    # ---- lifetime ----

    def shutdown(self) -> None:
        """Abort what is running and stop the loop thread (the engine too, if owned)."""
        with self._lock:
            self._active.clear()
        self._finalizer()
        super().shutdown()
