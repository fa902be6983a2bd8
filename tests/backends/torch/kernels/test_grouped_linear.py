"""``furiosa::grouped_linear``: the native CPU kernel quantizes activations per group (16-bit
codes by default, llama.cpp's 8-bit ones opt-in), dots integers, and matches its reference
kernel (any device) to fp32 summation order, close to the exact dequantized product; each
row's result is independent of the rows around it and of the thread count."""

from __future__ import annotations

import platform

import numpy as np
import pytest
import torch

from furiosa_integrations.backends.torch.kernels.grouped_linear import (
    GroupedWeight,
    dequantize,
    grouped_linear,
    native_kernel_loaded,
)


def gguf_weight(
    rows: int, cols: int, kind: str, seed: int = 0, activation_bits: int = 16
) -> GroupedWeight:
    """A weight quantized by the gguf package's own quantizer, in the op's layout."""
    import gguf

    data = np.random.default_rng(seed).standard_normal((rows, cols), dtype=np.float32) * 0.05
    qtype = getattr(gguf.GGMLQuantizationType, kind)
    blocks = gguf.quants.quantize(data, qtype).reshape(rows, cols // 32, -1)
    if kind == "Q4_1":  # [d, m, 16 bytes of codes] per group
        scales, mins, codes = blocks[..., 0:2], blocks[..., 2:4], blocks[..., 4:]
    else:  # [d, 32 signed codes]
        scales, mins, codes = blocks[..., 0:2], blocks[..., :0], blocks[..., 2:].view(np.int8)
    padded = (cols // 32 + 7) // 8 * 8  # the op's scale rows: zeros to a multiple of 8

    def as_int16(a: np.ndarray) -> torch.Tensor:
        halves = torch.from_numpy(np.ascontiguousarray(a).view(np.int16)[..., 0])
        return torch.nn.functional.pad(halves, (0, padded - halves.shape[1]))

    return GroupedWeight(
        torch.from_numpy(np.ascontiguousarray(codes).reshape(rows, -1)),
        as_int16(scales),
        as_int16(mins) if kind == "Q4_1" else torch.empty(0, dtype=torch.int16),
        activation_bits,
    )


def test_dequantize_gives_the_gguf_packages_own_weights() -> None:
    import gguf

    for kind in ("Q4_1", "Q8_0"):
        weight = gguf_weight(8, 64, kind)
        qtype = getattr(gguf.GGMLQuantizationType, kind)
        data = np.random.default_rng(0).standard_normal((8, 64), dtype=np.float32) * 0.05
        expected = gguf.quants.dequantize(gguf.quants.quantize(data, qtype), qtype)
        assert torch.equal(dequantize(weight), torch.from_numpy(expected))


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the native kernel is x86 (AVX2)")
@pytest.mark.parametrize("kind", ["Q4_1", "Q8_0"])
@pytest.mark.parametrize("bits, tolerance", [(16, 1e-4), (8, 0.02)])
def test_native_kernel_multiplies_the_exact_weights_row_by_row(
    kind: str, bits: int, tolerance: float
) -> None:
    assert native_kernel_loaded(), "the native CPU kernels did not build here (see the log)"
    weight = gguf_weight(200, 576, kind, activation_bits=bits)  # 200 outputs: uneven on threads
    x = torch.randn(37, 576)
    out = grouped_linear(x, weight, None)
    # the same arithmetic written out in torch ops (the op's reference kernel)
    reference = torch.ops.furiosa.grouped_linear.default.redispatch(
        torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd), x, *weight
    )
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)
    # close to the exact product with the dequantized weights: 16-bit activations within
    # 1e-4 of the largest output, llama.cpp's 8-bit ones within 2%
    exact = x.double() @ dequantize(weight).double().T
    assert (out.double() - exact).abs().max() < tolerance * exact.abs().max()
    bias = torch.randn(200)
    torch.testing.assert_close(grouped_linear(x, weight, bias), out + bias)
    # one row alone, in any batch, at any thread count: the same bits
    threads = torch.get_num_threads()
    try:
        for count in (1, threads):
            torch.set_num_threads(count)
            for rows in (1, 2, 5, 8, 13, 16):  # the kernel blocks 8, 4 and 1 rows together
                assert torch.equal(grouped_linear(x[:rows], weight, None), out[:rows])
            assert torch.equal(grouped_linear(x[20:21], weight, None), out[20:21])
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("bits", [16, 8])
def test_reference_kernel_quantizes_activations_per_group(bits: int) -> None:
    """The reference kernel (what runs where the native one could not be built, and on
    other devices): each row's groups as codes of scale ``amax / 32767`` (16 bits) or
    ``amax / 127`` (8 bits, llama.cpp's), Q4_1's minima times the groups' exact sums."""
    levels = 2 ** (bits - 1) - 1
    weight = gguf_weight(16, 64, "Q4_1", activation_bits=bits)
    x = torch.randn(3, 64)
    x[1, :32] = 0.0  # a group of zeros: scale 0, codes 0
    out = torch.ops.furiosa.grouped_linear.default.redispatch(
        torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd), x, *weight
    )
    groups = x.reshape(3, 2, 32)
    scale = groups.abs().amax(-1, keepdim=True) / levels
    codes = torch.where(scale > 0, torch.round(groups / scale), torch.zeros_like(groups))
    assert codes.abs().max() == levels
    approx = (codes * scale).reshape(3, 64)
    # Q4_1's minima multiply the exact group sums
    scaled_codes = dequantize(weight._replace(mins=torch.zeros_like(weight.mins)))
    minima = weight.mins[:, :2].view(torch.float16).float()  # its 2 groups (rows padded)
    expected = approx @ scaled_codes.T + groups.sum(-1) @ minima.T
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
