"""Hand items from a backend's own thread to callers on any event loop.

A native engine runs its work on a thread of its own (the torch engine's model steps, the
remote backend's HTTP client loop) while callers await results on their own event loops,
the sync bridge's among them. ``LoopSink`` delivers to one caller's loop through
``call_soon_threadsafe``; ``deliver_all`` delivers a whole batch with one wake-up per loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


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


__all__ = ["LoopSink", "deliver_all", "loop_sink"]
