"""Run the async engine from sync code: one background event-loop thread per process.

Sync callers (LangChain ``invoke``, LlamaIndex ``complete``) block on futures of that
loop. It works from any thread, from many threads at once, and from inside a running
event loop (a notebook cell), since the work never runs on the caller's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
# Closes scheduled from the loop itself, held here: asyncio holds tasks only weakly.
_closing: set[asyncio.Task[None]] = set()


def bridge_loop() -> asyncio.AbstractEventLoop:
    """The process-wide bridge loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                ready.set()
                loop.run_forever()

            _thread = threading.Thread(target=run, name="furiosa-sync-bridge", daemon=True)
            _thread.start()
            ready.wait()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the bridge loop and wait for it; Ctrl-C cancels it."""
    loop = bridge_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("run_sync was called from the bridge loop itself; await instead")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


def iterate_sync(stream: AsyncGenerator[T, None]) -> Generator[T, None, None]:
    """Iterate an async generator from sync code; closing early closes (aborts) it."""

    async def next_item() -> tuple[bool, T | None]:
        try:
            return True, await stream.__anext__()
        except StopAsyncIteration:
            return False, None

    async def close() -> None:
        await stream.aclose()

    try:
        while True:
            has_item, item = run_sync(next_item())
            if not has_item:
                return
            yield item  # type: ignore[misc]
    finally:
        if threading.current_thread() is _thread:
            # Finalized by the garbage collector on the bridge loop itself, which must not
            # block on itself: the close runs as the loop's next task instead.
            task = bridge_loop().create_task(close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
        else:
            run_sync(close())
