"""The engine thread shared by the torch engines.

Model steps block, so they run on one dedicated thread; callers on any event loop
receive results through ``loop_sink.LoopSink``. A crash of the thread marks the engine
dead, and every later call says so instead of hanging.
"""

from __future__ import annotations

import logging
import threading

from ...errors import EngineDeadError

logger = logging.getLogger(__name__)


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
