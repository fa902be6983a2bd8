"""Shared fixtures: the real default models, loaded once per test session.

Every test runs the real torch engine on the bundled default models. Engines come from
``get_engine`` so adapters built in tests share the same instances.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from furiosa_integrations.engine import AsyncEngine, get_engine


@pytest.fixture(scope="session")
def chat_engine() -> AsyncEngine:
    return get_engine(task="generate")


@pytest.fixture(scope="session")
def embed_engine() -> AsyncEngine:
    return get_engine(task="embed")


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
