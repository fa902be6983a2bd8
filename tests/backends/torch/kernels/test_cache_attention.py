"""``furiosa::cache_attention``: each query row over its own slot's cache columns, with
sliding windows, GQA and soft-capping; the native kernel agrees with the reference and
gives a row the same bits alone and in any batch."""

from __future__ import annotations

import platform

import pytest
import torch

from furiosa_integrations.backends.torch.kernels.cache_attention import cache_attention
from furiosa_integrations.backends.torch.kernels.grouped_linear import native_kernel_loaded


def reference(*args: object) -> torch.Tensor:
    return torch.ops.furiosa.cache_attention.default.redispatch(  # type: ignore[no-any-return]
        torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd), *args
    )


def test_reference_is_sdpa_over_the_rows_own_columns() -> None:
    torch.manual_seed(0)
    keys, values = torch.randn(2, 2, 40, 16), torch.randn(2, 2, 40, 16)
    q = torch.randn(1, 4, 16)
    out = reference(q, keys, values, torch.tensor([1]), torch.tensor([29]), 0, 0.25, 0.0)
    k = keys[1, :, :30].repeat_interleave(2, 0)[None]
    v = values[1, :, :30].repeat_interleave(2, 0)[None]
    expected = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(0, 1)[None], k, v, scale=0.25
    )
    torch.testing.assert_close(out, expected[0].transpose(0, 1), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the native kernel is x86 (AVX2)")
@pytest.mark.parametrize(("window", "softcap"), [(0, 0.0), (16, 0.0), (0, 30.0)])
@pytest.mark.parametrize("head_dim", [64, 128, 48])  # the kernel's two fixed sizes, and any other
def test_native_kernel_rows_on_their_own(window: int, softcap: float, head_dim: int) -> None:
    assert native_kernel_loaded(), "the native CPU kernels did not build here (see the log)"
    torch.manual_seed(1)
    keys, values = torch.randn(3, 3, 100, head_dim), torch.randn(3, 3, 100, head_dim)
    q = torch.randn(5, 9, head_dim)
    slots, positions = torch.tensor([0, 1, 1, 2, 0]), torch.tensor([0, 10, 11, 99, 57])
    args = (window, 0.125, softcap)
    out = cache_attention(q, keys, values, slots, positions, *args)
    expected = reference(q, keys, values, slots, positions, *args)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for t in range(5):
        alone = cache_attention(
            q[t : t + 1], keys, values, slots[t : t + 1], positions[t : t + 1], *args
        )
        assert torch.equal(alone[0], out[t])
    # columns past a row's position (another sequence's longer history) change nothing
    longer = keys.clone()
    longer[0, :, 60:] = 7.0
    assert torch.equal(cache_attention(q, longer, values, slots, positions, *args)[4], out[4])
