"""Backpressure: a limit on requests in flight, shared across threads and event loops.

Past the limit a caller either waits for a free place (``"wait"``) or is refused at once
with ``EngineOverloadedError`` (``"error"``), before anything is queued.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Literal

from ..errors import EngineOverloadedError

WhenFull = Literal["wait", "error"]


class Admission:
    def __init__(self, limit: int | None = None, when_full: WhenFull = "wait") -> None:
        self.configure(limit, when_full)
        self._lock = threading.Lock()
        self._active = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    def configure(self, limit: int | None, when_full: WhenFull) -> None:
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"max_pending_requests must be an integer >= 1 or None, got {limit!r}")
        if when_full not in ("wait", "error"):
            raise ValueError(f"when_full must be 'wait' or 'error', got {when_full!r}")
        self.limit = limit
        self.when_full = when_full

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def check(self) -> None:
        """Refuse now (policy ``"error"``) when full; called before anything is queued."""
        if self.limit is not None and self.when_full == "error" and self._active >= self.limit:
            raise EngineOverloadedError(
                f"The engine has {self._active} requests in flight (max_pending_requests="
                f"{self.limit}); try again later"
            )

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.limit is None or self._active < self.limit:
                self._active += 1
                return
            if self.when_full == "error":
                raise EngineOverloadedError(
                    f"The engine has {self._active} requests in flight "
                    f"(max_pending_requests={self.limit}); try again later"
                )
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter  # release() hands its place straight to us
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiters.remove((loop, waiter))
                    handed = False
                except ValueError:
                    handed = waiter.done() and not waiter.cancelled()
            if handed:
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(self._hand_over, waiter)
                    return
                except RuntimeError:  # that caller's loop is closed: skip it
                    continue
            self._active -= 1

    def _hand_over(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():
            self.release()  # its caller gave up meanwhile: pass the place on
        else:
            waiter.set_result(None)
