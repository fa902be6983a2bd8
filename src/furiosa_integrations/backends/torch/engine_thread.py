"""The one thread every torch engine in the process runs its model work on.

Model steps block, so they run off the callers' threads; callers on any event loop
receive results through ``loop_sink.LoopSink``. All torch engines (a chat model and an
embedding model in one RAG process, say) share one compute thread, and their weights
load on it too, because each OS thread that enters an OpenMP parallel region keeps its
own team of worker threads: with more of them than cores, libgomp stops its waiters
spinning and every one of a decode step's ~600 small parallel regions waits for a sleeping
thread to wake. Measured on 2 cores: one chat at 22 tok/s with the weights loaded on the
caller's thread, 44 tok/s with a single team; 25 tok/s with a second engine on a thread
of its own. Engines take turns, one step each.

A step that raises kills only its own engine: it is marked dead, its requests fail with
``EngineDeadError``, every later call says so, and the other engines keep running.

Work a load leaves for later (``EngineThread.background_work``: a decoder's move into
huge pages) runs in pieces of a few ms once that engine has run its first step: while no
engine has a step to run, and one piece every ``BACKGROUND_EVERY`` rounds of steps, so a
busy engine finishes it too. Not before: engines load on first use, so a request is
usually waiting for the load to end, and pieces then only delay its reply (~20 ms here).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from ...errors import EngineDeadError

logger = logging.getLogger(__name__)

T = TypeVar("T")

BACKGROUND_EVERY = 4  # rounds of steps per piece of background work while engines are busy


class ComputeThread:
    """Runs engines' steps (round robin, while any has work) and one-off calls (loads)."""

    _shared: ComputeThread | None = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._engines: list[EngineThread] = []
        self._calls: deque[tuple[Callable[[], object], Future[object]]] = deque()
        self._exiting = False  # set once its last engine left: the next user gets a new one
        self._background: list[EngineThread] = []  # stepped engines with background work left
        self._unstepped: list[EngineThread] = []  # their background work waits for a step
        self._thread = threading.Thread(target=self._main, name="furiosa-torch", daemon=True)
        self._thread.start()

    @classmethod
    def shared(cls) -> ComputeThread:
        with cls._shared_lock:
            if cls._shared is None or cls._shared._exiting:
                cls._shared = cls()
            return cls._shared

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def call(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        """``fn()`` on this thread, between steps; its result or its exception here."""
        if self.is_current():
            return fn()
        future: Future[object] = Future()
        with self._cond:
            ending = self._exiting  # it may have returned already: the next thread runs fn
            if not ending:
                self._calls.append((fn, future))
                self._cond.notify()
        if ending:
            return ComputeThread.shared().call(fn, timeout)
        return future.result(timeout)  # type: ignore[return-value]

    def post(self, fn: Callable[[], object]) -> None:
        """``fn()`` on this thread after the step in progress, without waiting for it."""
        with self._cond:
            self._calls.append((fn, Future()))
            self._cond.notify()

    def add(self, engine: EngineThread) -> ComputeThread:
        """Run ``engine``'s steps here (or on the next thread, if this one is ending)."""
        with self._cond:
            if not self._exiting:
                self._engines.append(engine)
                self._unstepped.append(engine)
                self._cond.notify()
                return self
        return ComputeThread.shared().add(engine)

    def remove(self, engine: EngineThread) -> None:
        """Drop ``engine`` (on this thread); with no engine left, this thread ends."""
        with ComputeThread._shared_lock, self._cond:
            if engine in self._engines:
                self._engines.remove(engine)
            for waiting in (self._background, self._unstepped):
                if engine in waiting:
                    waiting.remove(engine)
            if not self._engines:
                self._exiting = True

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def join(self, timeout: float) -> None:
        if self._exiting and not self.is_current():
            self._thread.join(timeout)

    def _main(self) -> None:
        rounds = 0  # rounds of steps run
        while True:
            with self._cond:
                while (
                    not self._calls
                    and not self._busy()
                    and not self._exiting
                    and not self._background
                ):
                    self._cond.wait(timeout=1.0)
                calls = list(self._calls)
                self._calls.clear()
                if not calls and not self._busy() and self._exiting:
                    return
            for fn, future in calls:
                try:
                    future.set_result(fn())
                except BaseException as exc:  # the caller re-raises it
                    future.set_exception(exc)
            with self._cond:  # after the calls: an engine may have left
                engines = list(self._engines)
            stepped = False
            for engine in engines:
                if engine.has_work():
                    engine._run_step()
                    stepped = True
                    if engine in self._unstepped:  # its background work may start now
                        with self._cond:
                            self._unstepped.remove(engine)
                            self._background.append(engine)
            rounds += stepped
            if not stepped or rounds % BACKGROUND_EVERY == 0:
                self._background_piece()

    def _background_piece(self) -> None:
        """One piece of the first engine's background work that has some left."""
        while self._background:
            engine = self._background[0]
            try:
                more = engine in self._engines and engine.background_work()
            except Exception:  # only the gain is lost: the weights stay where they were
                logger.exception("engine %s: background work failed", engine.name)
                more = False
            if more:
                return
            with self._cond:
                if engine in self._background:
                    self._background.remove(engine)

    def _busy(self) -> list[EngineThread]:
        return [e for e in self._engines if e.has_work()]


def run_on_compute_thread(fn: Callable[[], T]) -> T:
    """``fn()`` on the shared compute thread: model loads, so the caller's thread keeps no
    OpenMP team of its own."""
    return ComputeThread.shared().call(fn)


class EngineThread:
    """An engine whose ``step()`` runs on the shared compute thread while ``has_work()``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stopping = False
        self._dead_reason: str | None = None
        self._compute: ComputeThread | None = None

    def start(self) -> None:
        self._compute = ComputeThread.shared().add(self)

    # Subclasses implement these three; they run on the compute thread.
    def has_work(self) -> bool:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def on_stop(self, error: BaseException) -> None:
        """Fail everything still in flight with ``error``."""
        raise NotImplementedError

    def background_work(self) -> bool:
        """One piece (a few ms) of work the load left for later; True while pieces are left.
        Runs on the compute thread, between steps."""
        return False

    def wake(self) -> None:
        if self._compute is not None:
            self._compute.wake()

    def is_alive(self) -> bool:
        compute = self._compute
        return self._dead_reason is None and compute is not None and compute.is_alive()

    def check_alive(self) -> None:
        if self._dead_reason is not None:
            raise EngineDeadError(f"The engine is not running: {self._dead_reason}")
        if self._compute is None or not self._compute.is_alive():
            raise EngineDeadError("The engine is not running: its compute thread has exited")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the step in progress; requests still in flight fail as shut down."""
        if self._dead_reason is None:
            self._dead_reason = "it was shut down"
        compute = self._compute
        if compute is None or self._stopping:
            return
        self._stopping = True
        error = EngineDeadError("The engine was shut down with this request in flight")
        if not compute.is_alive():
            return
        if compute.is_current():  # a finalizer inside some step: leave once it is over
            compute.post(lambda: self._leave(error))
            return
        try:
            compute.call(lambda: self._leave(error), timeout)
        except TimeoutError:
            logger.warning("engine %s: a step outlasted shutdown's %.0f s", self.name, timeout)
            return
        compute.join(timeout)

    def _leave(self, error: BaseException) -> None:
        assert self._compute is not None
        self._compute.remove(self)
        self.on_stop(error)

    def _run_step(self) -> None:
        """One step, on the compute thread; a raise here is a bug in this engine's loop."""
        try:
            self.step()
        except BaseException as exc:
            logger.exception("furiosa_integrations engine %s crashed", self.name)
            self._dead_reason = f"its thread crashed: {exc!r}"
            self._stopping = True
            self._leave(EngineDeadError(f"The engine died: {exc!r}"))
