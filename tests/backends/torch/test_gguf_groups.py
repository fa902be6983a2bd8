"""``find_groups``: GGUF's Q4_1 and Q8_0 groups recovered bit for bit from the fp32 weights
transformers dequantizes them to, through row permutations and concatenations; weights of
any other origin are left alone."""

from __future__ import annotations

import platform

import pytest
import torch

from furiosa_integrations.backends.torch.gguf_groups import find_groups
from furiosa_integrations.backends.torch.kernels.grouped_linear import dequantize
from tests.backends.torch.kernels.test_grouped_linear import gguf_weight

pytestmark = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="the native kernels are x86 (AVX2)"
)


@pytest.mark.parametrize("kind", ["Q4_1", "Q8_0"])
def test_groups_come_back_as_the_file_stored_them(kind: str) -> None:
    stored = gguf_weight(64, 128, kind)
    found = find_groups(dequantize(stored))
    assert found is not None and found.activation_bits == stored.activation_bits == 16
    for ours, theirs in zip(found[:3], stored[:3], strict=True):  # codes, scales, minima
        assert torch.equal(ours, theirs)


def test_permuted_and_fused_rows_keep_their_groups() -> None:
    q, k = dequantize(gguf_weight(64, 128, "Q4_1", 1)), dequantize(gguf_weight(32, 128, "Q4_1", 2))
    fused = torch.cat([q[torch.randperm(64)], k])  # un-permuted q rows, then qkv fused
    found = find_groups(fused)
    assert found is not None and torch.equal(dequantize(found), fused)


def test_weights_of_other_origin_are_left_alone() -> None:
    assert find_groups(torch.randn(64, 128)) is None  # a plain fp32 checkpoint
    nudged = dequantize(gguf_weight(64, 128, "Q4_1"))
    nudged[5, 7] = torch.nextafter(nudged[5, 7], torch.tensor(1.0))  # one value off its grid
    assert find_groups(nudged) is None
    assert find_groups(torch.randn(64, 100)) is None  # inputs not in groups of 32
    assert find_groups(dequantize(gguf_weight(64, 96, "Q4_1"))) is None  # groups not in pairs
    assert find_groups(dequantize(gguf_weight(64, 128, "Q4_1")).half()) is None  # not fp32
