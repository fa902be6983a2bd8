"""Checks tests make on engines: nothing left in flight, and how far vectors may move."""

from __future__ import annotations

import asyncio
import time

import torch

from furiosa_integrations.engine import AsyncEngine


def batch_tolerance(engine: AsyncEngine) -> float:
    """How far one text's vector may move with the batch it shares: nothing in fp32; with
    bf16 matmuls (the default on AMX CPUs) rounding depends on the batch shape, up to ~1e-3."""
    return 1e-5 if engine.native.dtype == torch.float32 else 2e-3  # type: ignore[attr-defined]


async def wait_idle(engine: AsyncEngine, timeout: float = 10.0) -> None:
    """Wait until the engine holds no request id, slot or queued work (aborts are async)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = engine.stats()
        if stats.running == stats.waiting == stats.used_cache_slots == stats.request_ids == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"engine not idle after {timeout}s: {stats}")
        await asyncio.sleep(0.02)


def wait_idle_sync(engine: AsyncEngine, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stats = engine.stats()
        if stats.running == stats.waiting == stats.used_cache_slots == stats.request_ids == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"engine not idle after {timeout}s: {stats}")
        time.sleep(0.02)
