"""``furiosa::row_argmax``: the native kernel gives ``torch.argmax(dim=-1)``'s indices,
ties (the first maximum), NaNs (the first NaN), rows of -inf and vocabularies that are not a
multiple of eight included."""

from __future__ import annotations

import platform

import pytest
import torch

from furiosa_integrations.backends.torch.kernels.grouped_linear import native_kernel_loaded
from furiosa_integrations.backends.torch.kernels.row_argmax import row_argmax

native = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="the native kernels are x86 (AVX2)"
)


@native
@pytest.mark.parametrize("rows, vocab", [(1, 49152), (16, 1000), (3, 7), (5, 13)])
def test_row_argmax_is_torch_argmax(rows: int, vocab: int) -> None:
    assert native_kernel_loaded(), "the native CPU kernels did not build here (see the log)"
    torch.manual_seed(vocab)
    logits = torch.randn(rows, vocab)
    logits[0, vocab // 3] = logits[0, vocab - 1] = 50.0  # a tie: the first wins
    if rows > 1:
        logits[1] = float("-inf")  # every token masked
    if rows > 2:
        logits[2, vocab // 2] = logits[2, vocab - 2] = float("nan")  # the first NaN wins
    if rows > 3:
        logits[3, -1] = float("nan")  # a NaN in the tail past the last 8 values
    if rows > 4:
        logits[4] = torch.where(logits[4] > 0, 0.0, -0.0)  # +0 and -0 are equal maxima
    got = row_argmax(logits)
    assert got.dtype == torch.int64
    assert torch.equal(got, torch.argmax(logits, dim=-1))
    assert int(got[0]) == vocab // 3
