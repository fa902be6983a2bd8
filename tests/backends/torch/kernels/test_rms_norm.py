"""``furiosa::rms_norm``: F.rms_norm's result (to summation order) in one pass a row, each
row the same bits alone and in a batch; the reference kernel is F.rms_norm itself."""

from __future__ import annotations

import platform

import pytest
import torch

from furiosa_integrations.backends.torch.kernels.grouped_linear import native_kernel_loaded
from furiosa_integrations.backends.torch.kernels.rms_norm import native_rms_norm


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the native kernel is x86 (AVX2)")
def test_native_rms_norm_matches_torch_row_by_row() -> None:
    assert native_kernel_loaded(), "the native CPU kernels did not build here (see the log)"
    torch.manual_seed(0)
    x, weight = torch.randn(100, 576) * 3, torch.randn(576)
    out = native_rms_norm(x, weight, 1e-5)
    expected = torch.nn.functional.rms_norm(x, (576,), weight, 1e-5)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for rows in (1, 7, 64):
        assert torch.equal(native_rms_norm(x[:rows], weight, 1e-5), out[:rows])
    heads = torch.randn(5, 9, 64)  # per-head norms (Qwen3, Gemma 3): the last dimension
    torch.testing.assert_close(
        native_rms_norm(heads, weight[:64], 1e-6),
        torch.nn.functional.rms_norm(heads, (64,), weight[:64], 1e-6),
        rtol=1e-5,
        atol=1e-5,
    )


def test_reference_kernel_is_f_rms_norm() -> None:
    x, weight = torch.randn(3, 64), torch.randn(64)
    out = torch.ops.furiosa.rms_norm.default.redispatch(
        torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd), x, weight, 1e-5
    )
    assert torch.equal(out, torch.nn.functional.rms_norm(x, (64,), weight, 1e-5))
