"""Hand items from a backend's own thread to callers on any event loop.

A native engine runs its work on a thread of its own (the torch engine's model steps, the
remote backend's HTTP client loop) while callers await results on their own event loops,
the sync bridge's among them. ``LoopSink`` delivers to one caller's loop through
``call_soon_threadsafe``; ``deliver_all`` delivers a whole batch with one wake-up per loop.
A holding sink (a caller that reads only the end: ``RequestOutputKind.FINAL_ONLY``) keeps
a request's intermediate items and delivers them with its last one: no wake-up a token.
Each wake-up ran the caller's loop while the engine thread needed the interpreter lock
back for its next step (one chat through ``invoke``: ~0.9x the time holding, measured in
one process, alternating).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class LoopSink:
    """Hands items from the engine thread to a callback on the caller's event loop."""

    __slots__ = ("held", "loop", "put")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, put: Callable[[Any], None], hold: bool = False
    ) -> None:
        self.loop = loop
        self.put = put
        self.held: list[Any] | None = [] if hold else None  # kept for the last delivery

    def __call__(self, item: Any) -> bool:
        """Deliver one item (a request's last one: with whatever was held before it);
        returns False when the loop is gone."""
        batch = [(self.put, kept) for kept in self.held or ()] + [(self.put, item)]
        if self.held:
            self.held = []
        try:
            self.loop.call_soon_threadsafe(_put_all, batch)
            return True
        except RuntimeError:  # the caller's event loop was closed
            return False


def loop_sink(
    loop: asyncio.AbstractEventLoop, put: Callable[[Any], None], hold: bool = False
) -> LoopSink:
    return LoopSink(loop, put, hold)


def deliver_all(items: list[tuple[LoopSink, Any]]) -> list[bool]:
    """Deliver a whole step's items of running requests with one wake-up per event loop
    instead of one per item (a holding sink keeps its item instead); returns, per item,
    whether its loop was still there."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Callable[[Any], None], Any]]] = {}
    for sink, item in items:
        if sink.held is not None:
            sink.held.append(item)
        else:
            by_loop.setdefault(sink.loop, []).append((sink.put, item))
    alive: dict[asyncio.AbstractEventLoop, bool] = {}
    for loop, batch in by_loop.items():
        try:
            loop.call_soon_threadsafe(_put_all, batch)
            alive[loop] = True
        except RuntimeError:
            alive[loop] = False
    return [
        alive[sink.loop] if sink.held is None else not sink.loop.is_closed() for sink, _ in items
    ]


def _put_all(batch: list[tuple[Callable[[Any], None], Any]]) -> None:
    for put, item in batch:
        put(item)


__all__ = ["LoopSink", "deliver_all", "loop_sink"]
