"""The HTTP client's own thread: one event loop owning one pooled ``httpx.AsyncClient``.

The engine is used from many event loops at once (each caller's, and the sync bridge's),
and an ``httpx.AsyncClient`` belongs to one. So requests run as tasks on this thread's
loop, and their results reach each caller's loop through ``loop_sink.LoopSink``, as the
torch engine's do.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import httpx

from ...errors import EngineDeadError
from ..loop_sink import LoopSink
from .config import RemoteConfig

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ClientLoop:
    """A daemon thread running an event loop with the server's ``httpx.AsyncClient``."""

    def __init__(self, config: RemoteConfig, name: str = "furiosa-remote") -> None:
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._closed = False
        self.client: httpx.AsyncClient | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.client = httpx.AsyncClient(
            timeout=self.config.httpx_timeout(),
            verify=self.config.verify,
            limits=httpx.Limits(
                max_connections=self.config.max_connections,
                max_keepalive_connections=min(32, self.config.max_connections),
            ),
            headers=self.config.request_headers(),
            follow_redirects=False,
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def is_alive(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def check_alive(self) -> None:
        if self._closed:
            raise EngineDeadError("The served backend was shut down")
        if not self._thread.is_alive():
            raise EngineDeadError("The served backend's client thread has exited")

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the client loop (from any thread)."""
        self.check_alive()
        self._loop.call_soon_threadsafe(callback, *args)

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """On the client loop only: start ``coro`` as a task there."""
        return self._loop.create_task(coro)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coro`` on the client loop; its result as a thread-safe future."""
        try:
            self.check_alive()
        except BaseException:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """``await`` ``coro`` from any event loop; cancelling the caller cancels it there."""
        return await asyncio.wrap_future(self.submit(coro))

    def close(self, timeout: float = 5.0) -> None:
        """Cancel what is running, close the connections and stop the thread."""
        if self._closed:
            return
        self._closed = True
        if not self._thread.is_alive():
            return

        async def stop() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.client is not None:
                await self.client.aclose()

        if threading.current_thread() is self._thread:
            self._loop.stop()
            return
        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout)
        except Exception:
            logger.warning("The served backend's client did not close cleanly", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)


__all__ = ["ClientLoop", "LoopSink"]
