"""``furiosa::rotary_store`` and ``furiosa::silu_mul``: the native kernels give their
reference kernels' results (torch ops: transformers' RoPE, ``F.silu(gate) * up``) to a
rounding, write k and v into exactly their rows' cache slots and positions and nothing
else, and compute each row the same alone and in a batch."""

from __future__ import annotations

import platform

import pytest
import torch

from furiosa_integrations.backends.torch.decoders.model import Rotary
from furiosa_integrations.backends.torch.decoders.rope import apply_rotary, cos_sin
from furiosa_integrations.backends.torch.kernels.grouped_linear import native_kernel_loaded
from furiosa_integrations.backends.torch.kernels.layer_ops import rotary_store, silu_mul

native = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="the native kernels are x86 (AVX2)"
)
REFERENCE = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)


def tables_at(positions: torch.Tensor, rotary_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin ``[T, 1, rotary_dim]`` as the decoder builds them (``rope.cos_sin``)."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, rotary_dim, 2).float() / rotary_dim))
    return cos_sin(Rotary(inv_freq, 1.0, rotary_dim), positions, torch.float32)


@native
@pytest.mark.parametrize("rotary_dim", [64, 32, 20])  # full, partial (Phi, NeoX), odd halves
def test_rotary_store_rotates_and_writes_each_row(rotary_dim: int) -> None:
    assert native_kernel_loaded(), "the native CPU kernels did not build here (see the log)"
    torch.manual_seed(0)
    heads, kv_heads, dim, tokens = 9, 3, 64, 7
    qkv = torch.randn(tokens, (heads + 2 * kv_heads) * dim)
    slots = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    positions = torch.arange(tokens) + 3  # distinct (slot, position) per row
    cos, sin = tables_at(positions, rotary_dim)
    keys, values = torch.zeros(4, kv_heads, 16, dim), torch.zeros(4, kv_heads, 16, dim)
    q = rotary_store(qkv, cos, sin, keys, values, slots, positions, heads, kv_heads)
    split = qkv.reshape(tokens, heads + 2 * kv_heads, dim)
    # transformers' RoPE, as the eager layers apply it
    torch.testing.assert_close(q, apply_rotary(split[:, :heads], cos, sin))
    expected_k = apply_rotary(split[:, heads : heads + kv_heads], cos, sin)
    written = torch.zeros(4, 16, dtype=torch.bool)
    for t in range(tokens):
        slot, position = int(slots[t]), int(positions[t])
        torch.testing.assert_close(keys[slot, :, position], expected_k[t])
        assert torch.equal(values[slot, :, position], split[t, heads + kv_heads :])
        written[slot, position] = True
    assert not keys.permute(0, 2, 1, 3)[~written].any()  # nothing else touched
    assert not values.permute(0, 2, 1, 3)[~written].any()
    # the reference kernel agrees
    ref_keys, ref_values = torch.zeros_like(keys), torch.zeros_like(values)
    ref_q = torch.ops.furiosa.rotary_store.default.redispatch(
        REFERENCE, qkv, cos, sin, ref_keys, ref_values, slots, positions, heads, kv_heads
    )
    torch.testing.assert_close(ref_q, q)
    torch.testing.assert_close(ref_keys, keys)
    assert torch.equal(ref_values, values)
    # a row alone: the same bits
    alone = rotary_store(
        qkv[3:4],
        cos[3:4],
        sin[3:4],
        keys.clone(),
        values.clone(),
        slots[3:4],
        positions[3:4],
        heads,
        kv_heads,
    )
    assert torch.equal(alone, q[3:4])


@native
def test_rotary_store_refuses_rows_outside_the_cache() -> None:
    assert native_kernel_loaded()
    keys, values = torch.zeros(2, 1, 8, 64), torch.zeros(2, 1, 8, 64)
    cos, sin = tables_at(torch.tensor([8]), 64)
    with pytest.raises(RuntimeError, match="outside the cache"):
        rotary_store(
            torch.randn(1, 3 * 64),
            cos,
            sin,
            keys,
            values,
            torch.tensor([0]),
            torch.tensor([8]),
            1,
            1,
        )


@native
def test_silu_mul_matches_torch_row_by_row() -> None:
    assert native_kernel_loaded()
    torch.manual_seed(0)
    gate_up = torch.randn(33, 2 * 1536) * 4
    gate_up[0, :3] = torch.tensor([-200.0, 200.0, 0.0])  # far tails: no overflow
    out = silu_mul(gate_up)
    gate, up = gate_up.chunk(2, dim=-1)
    torch.testing.assert_close(out, torch.nn.functional.silu(gate) * up, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(out).all()
    for rows in (1, 5):
        assert torch.equal(silu_mul(gate_up[:rows]), out[:rows])
    reference = torch.ops.furiosa.silu_mul.default.redispatch(REFERENCE, gate_up)
    assert torch.equal(reference, torch.nn.functional.silu(gate) * up)
