"""A decoder's GGUF groups are copied, in order, into one buffer of 2 MB pages (fewer TLB
misses while a decode step streams them): the same values and the same products, and where
the system gives transparent huge pages, the pages really are huge ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from furiosa_integrations.backends.torch.huge_pages import (
    HUGE_PAGE,
    huge_pages_available,
    in_huge_pages,
)
from furiosa_integrations.backends.torch.kernels.grouped_linear import (
    GroupedWeight,
    grouped_linear,
)
from furiosa_integrations.core.async_engine import AsyncEngine
from tests.backends.torch.kernels.test_grouped_linear import gguf_weight


def anon_huge_kb(address: int) -> int:
    """The huge pages (kB) of this process's mapping that holds ``address``."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if not head.endswith(":"):  # a mapping's header: start-end perms offset ...
            start, end = (int(bound, 16) for bound in head.split("-"))
            inside = start <= address < end
        elif inside and head == "AnonHugePages:":
            return int(line.split()[1])
    return 0


def test_groups_move_into_one_buffer_with_the_same_values() -> None:
    weights: list[GroupedWeight | torch.Tensor] = [
        gguf_weight(2048, 1024, "Q4_1", seed=1),  # ~1.3 MB of codes, scales and minima
        torch.randn(64, 64).half(),  # not groups: left as it is
        gguf_weight(1024, 1024, "Q8_0", seed=2),  # no minima
        gguf_weight(2048, 1024, "Q4_1", seed=3),
    ]
    moved = in_huge_pages(weights)
    assert moved[1] is weights[1]
    if not huge_pages_available():
        assert all(a is b for a, b in zip(moved, weights, strict=True))
        pytest.skip("no transparent huge pages on this system")
    x = torch.randn(3, 1024)
    starts = []
    for before, after in zip(weights[::2], moved[::2], strict=True):
        assert isinstance(before, GroupedWeight) and isinstance(after, GroupedWeight)
        for old, new in zip(before[:3], after[:3], strict=True):
            assert torch.equal(old, new) and old.dtype == new.dtype
        assert after.activation_bits == before.activation_bits
        assert torch.equal(grouped_linear(x, after, None), grouped_linear(x, before, None))
        starts.append(after.codes.data_ptr())
    assert starts[0] % HUGE_PAGE == 0 and starts == sorted(starts)  # in order, one buffer
    assert anon_huge_kb(starts[0]) >= HUGE_PAGE // 1024


def test_huge_pages_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FURIOSA_HUGE_PAGES", "0")
    weights = [gguf_weight(64, 64, "Q4_1")]
    assert not huge_pages_available()
    assert in_huge_pages(weights)[0] is weights[0]


def test_default_decoders_groups_are_in_huge_pages(chat_engine: AsyncEngine) -> None:
    decoder = chat_engine.native.decoder  # type: ignore[attr-defined]
    first = decoder.model.layers[0].qkv
    if not isinstance(first, GroupedWeight) or not huge_pages_available():
        pytest.skip("no GGUF groups (native kernels) or no huge pages here")
    assert first.codes.data_ptr() % HUGE_PAGE == 0
    assert anon_huge_kb(first.codes.data_ptr()) >= HUGE_PAGE // 1024
