"""The engine thread shared by the torch engines, and its bridge to asyncio.

Model steps block, so they run on one dedicated thread; callers on any event loop
receive results through ``call_soon_threadsafe``. A crash of the thread marks the engine
dead, and every later call says so instead of hanging.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from ...errors import EngineDeadError

logger = logging.getLogger(__name__)


class LoopSink:
    """Hands items from the engine thread to a callback on the caller's event loop."""

    __slots__ = ("loop", "put")

    def __init__(self, loop: asyncio.AbstractEventLoop, put: Callable[[Any], None]) -> None:
        self.loop = loop
        self.put = put

    def __call__(self, item: Any) -> bool:
        """Deliver one item; returns False when the loop is gone."""
        try:
            self.loop.call_soon_threadsafe(self.put, item)
            return True
        except RuntimeError:  # the caller's event loop was closed
            return False


def loop_sink(loop: asyncio.AbstractEventLoop, put: Callable[[Any], None]) -> LoopSink:
    return LoopSink(loop, put)


def deliver_all(items: list[tuple[LoopSink, Any]]) -> list[bool]:
    """Deliver a whole step's items with one wake-up per event loop instead of one per item;
    returns, per item, whether its loop was still there."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Callable[[Any], None], Any]]] = {}
    for sink, item in items:
        by_loop.setdefault(sink.loop, []).append((sink.put, item))
    alive: dict[asyncio.AbstractEventLoop, bool] = {}
    for loop, batch in by_loop.items():
        try:
            loop.call_soon_threadsafe(_put_all, batch)
            alive[loop] = True
        except RuntimeError:
            alive[loop] = False
    return [alive[sink.loop] for sink, _ in items]


def _put_all(batch: list[tuple[Callable[[Any], None], Any]]) -> None:
    for put, item in batch:
        put(item)


class EngineThread:
    """Runs ``step()`` repeatedly on a daemon thread while ``has_work()``; sleeps otherwise."""

    def __init__(self, name: str) -> None:
        self._cond = threading.Condition()
        self._stopping = False
        self._dead_reason: str | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    # Subclasses implement these three; they run on the engine thread.
    def has_work(self) -> bool:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def on_stop(self, error: BaseException) -> None:
        """Fail everything still in flight with ``error``."""
        raise NotImplementedError

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def is_alive(self) -> bool:
        return self._dead_reason is None and self._thread.is_alive()

    def check_alive(self) -> None:
        if self._dead_reason is not None:
            raise EngineDeadError(f"The engine is not running: {self._dead_reason}")
        if not self._thread.is_alive():
            raise EngineDeadError("The engine is not running: its thread has exited")

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            if self._dead_reason is None:
                self._dead_reason = "it was shut down"
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._stopping and not self.has_work():
                        self._cond.wait(timeout=1.0)
                    if self._stopping:
                        break
                self.step()
            self.on_stop(EngineDeadError("The engine was shut down with this request in flight"))
        except BaseException as exc:  # a bug in the loop itself: the engine is dead
            logger.exception("furiosa_integrations engine thread crashed")
            self._dead_reason = f"its thread crashed: {exc!r}"
            self.on_stop(EngineDeadError(f"The engine died: {exc!r}"))
