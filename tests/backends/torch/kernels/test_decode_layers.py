"""``furiosa::decode_layers``: the native op (every layer of a decode step in C++) gives the
same bits as its reference, the per-op layers in torch ops, with sliding windows, soft-capping,
two RoPE tables and both group formats; it checks its arguments before any work."""

from __future__ import annotations

import platform
from typing import Any

import pytest
import torch

from furiosa_integrations.backends.torch.kernels import decode_layers as _decode_layers  # noqa: F401
from furiosa_integrations.backends.torch.kernels.grouped_linear import native_kernel_loaded
from tests.backends.torch.kernels.test_layer_ops import tables_at

native = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="the native kernels are x86 (AVX2)"
)
REFERENCE = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)
decode_layers = torch.ops.furiosa.decode_layers  # the native kernel where it is loaded
HIDDEN, HEADS, KV_HEADS, DIM, INTERMEDIATE, LAYERS = 128, 2, 1, 64, 192, 2


def groups(rows: int, inputs: int, q4: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random codes, fp16 scales (and Q4_1 minima) in ``GroupedWeight``'s layout."""
    count = inputs // 32
    padded = (count + 7) // 8 * 8

    def halves(scale: float) -> torch.Tensor:
        values = torch.zeros(rows, padded)
        values[:, :count] = (torch.rand(rows, count) - (0.5 if scale < 0 else 0)) * abs(scale)
        return values.half().view(torch.int16)

    if q4:
        codes = torch.randint(0, 256, (rows, inputs // 2), dtype=torch.uint8)
        return codes, halves(0.02), halves(-0.1)
    codes = torch.randint(-127, 128, (rows, inputs), dtype=torch.int8)
    return codes, halves(0.002), torch.empty(0, dtype=torch.int16)


def step_arguments(bits: int, window: int, softcap: float) -> list[Any]:
    torch.manual_seed(bits + window)
    shapes = [((HEADS + 2 * KV_HEADS) * DIM, HIDDEN), (HIDDEN, HEADS * DIM)]
    shapes += [(2 * INTERMEDIATE, HIDDEN), (HIDDEN, INTERMEDIATE)]
    linears = [groups(n, k, q4=j != 3) for _ in range(LAYERS) for j, (n, k) in enumerate(shapes)]
    slots, positions = torch.tensor([2, 0, 1]), torch.tensor([9, 3, 6])
    tables = [tables_at(positions, DIM), tables_at(positions * 2, DIM)]
    keys = torch.randn(LAYERS, 3, KV_HEADS, 16, DIM)
    return [
        torch.randn(3, HIDDEN),
        [cos for cos, _ in tables],
        [sin for _, sin in tables],
        keys,
        torch.randn_like(keys),
        slots,
        positions,
        [c for c, _, _ in linears],
        [s for _, s, _ in linears],
        [m for _, _, m in linears],
        [bits] * len(linears),
        [1 + 0.1 * torch.randn(HIDDEN) for _ in range(2 * LAYERS)],
        [0, 1],  # each layer its own RoPE table
        [0, window],
        [DIM**-0.5, 0.1],
        softcap,
        1e-5,
        HEADS,
        KV_HEADS,
    ]


@native
@pytest.mark.parametrize("bits, window, softcap", [(16, 0, 0.0), (8, 4, 30.0)])
def test_native_decode_layers_equal_the_per_op_layers(
    bits: int, window: int, softcap: float
) -> None:
    assert native_kernel_loaded(), "the native CPU kernels did not build here (see the log)"
    args = step_arguments(bits, window, softcap)
    keys, values = args[3].clone(), args[4].clone()
    out = decode_layers(*args[:3], keys, values, *args[5:])
    ref_keys, ref_values = args[3].clone(), args[4].clone()
    expected = torch.ops.furiosa.decode_layers.default.redispatch(
        REFERENCE, *args[:3], ref_keys, ref_values, *args[5:]
    )
    assert out.shape == (3, HIDDEN) and out.abs().sum() > 0
    assert torch.equal(out, expected)
    assert torch.equal(keys, ref_keys) and torch.equal(values, ref_values)
    assert not torch.equal(keys, args[3])  # this step's k went into the cache
    # a row alone gives the same bits as in the batch
    alone = args.copy()
    alone[0], alone[5], alone[6] = args[0][1:2], args[5][1:2], args[6][1:2]
    alone[1] = [cos[1:2] for cos in args[1]]
    alone[2] = [sin[1:2] for sin in args[2]]
    row = decode_layers(*alone[:3], args[3].clone(), args[4].clone(), *alone[5:])
    assert torch.equal(row, out[1:2])


@native
def test_decode_layers_checks_its_lists_before_any_work() -> None:
    assert native_kernel_loaded()
    args = step_arguments(16, 0, 0.0)
    keys = args[3].clone()
    short = [*args[:7], args[7][:-1], *args[8:]]  # a linear missing
    with pytest.raises(RuntimeError, match="four linears and two norms a layer"):
        decode_layers(*short[:3], keys, args[4], *short[5:])
    assert torch.equal(keys, args[3])  # nothing written
    no_table = [*args[:12], [0, 2], *args[13:]]
    with pytest.raises(RuntimeError, match="RoPE table"):
        decode_layers(*no_table[:3], keys, args[4], *no_table[5:])
    assert torch.equal(keys, args[3])
