"""Parallel sampling: a request with ``n > 1`` runs as ``n`` native requests, merged back.

As vLLM's ``ParentRequest`` does: each sample is its own native request (``"id:0"``,
``"id:1"``, ...) with its own seed (``seed + i``), and their steps are merged into one
stream of ``(sample index, step)`` in arrival order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from .protocol import NativeStep
from .sampling_params import SamplingParams

# Opens the native stream of one sample: (its params, its native id) -> steps.
OpenStream = Callable[[SamplingParams, str], AsyncGenerator[NativeStep, None]]


def sample_ids(request_id: str, n: int) -> list[str]:
    """The native ids of a request's ``n`` samples (the id itself when ``n == 1``)."""
    return [request_id] if n == 1 else [f"{request_id}:{i}" for i in range(n)]


def sample_params(params: SamplingParams) -> list[SamplingParams]:
    """Each sample's params: ``n=1``, and seeds that differ per sample."""
    if params.n == 1:
        return [params]
    return [
        params.clone(n=1, seed=None if params.seed is None else params.seed + i)
        for i in range(params.n)
    ]


async def merged_steps(
    open_stream: OpenStream, params: list[SamplingParams], ids: list[str]
) -> AsyncGenerator[tuple[int, NativeStep], None]:
    """The steps of every sample, tagged with its index; closing this closes them all."""
    if len(ids) == 1:
        stream = open_stream(params[0], ids[0])
        try:
            async for step in stream:
                yield 0, step
        finally:
            await stream.aclose()
        return
    queue: asyncio.Queue[tuple[int, NativeStep] | BaseException | None] = asyncio.Queue()

    async def pump(index: int) -> None:
        stream = None
        try:
            stream = open_stream(params[index], ids[index])
            async for step in stream:
                await queue.put((index, step))
        except BaseException as exc:
            await queue.put(exc)
            raise
        finally:
            if stream is not None:
                await stream.aclose()  # aborts the native request now, not at GC
            await queue.put(None)

    tasks = [asyncio.create_task(pump(i)) for i in range(len(ids))]
    try:
        done = 0
        while done < len(tasks):
            item = await queue.get()
            if item is None:
                done += 1
            elif isinstance(item, BaseException):
                if not isinstance(item, asyncio.CancelledError):
                    raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["merged_steps", "sample_ids", "sample_params"]
