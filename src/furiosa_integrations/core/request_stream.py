"""``RequestStream``: an async generator that lets go of its request the moment its
consumer does.

A plain async generator that is left after a ``break`` is closed only when the event loop
next runs its finalizer, so its request id and native request would stay in flight a
little longer than the code that broke out of it. This wrapper releases them
synchronously: at the end, on an error or cancellation, on ``aclose()``, and (CPython
frees objects as soon as they are dropped) right after a ``break``. The wrapped
generator's own ``finally`` still runs later, and finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class RequestStream(AsyncGenerator[T, None]):
    """Iterates ``inner``; calls ``release`` (synchronous, once) when iteration stops."""

    def __init__(self, inner: AsyncGenerator[T, None], release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release
        self._released = False

    def release(self) -> None:
        """Abort what is still running and free the request's id, now (idempotent)."""
        if not self._released:
            self._released = True
            self._release()

    async def __anext__(self) -> T:
        try:
            return await self._inner.__anext__()
        except BaseException:  # the end, an error or a cancellation: nothing more comes
            self.release()
            raise

    async def asend(self, value: None) -> T:
        return await self.__anext__()

    async def athrow(
        self,
        typ: Any,
        val: BaseException | object = None,
        tb: TracebackType | None = None,
    ) -> T:
        self.release()
        return await self._inner.athrow(typ, val, tb)

    async def aclose(self) -> None:
        self.release()
        await self._inner.aclose()

    def __del__(self) -> None:
        self.release()


__all__ = ["RequestStream"]
