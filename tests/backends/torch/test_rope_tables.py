"""RoPE tables looked up per position give ``cos_sin``'s own values, bit for bit."""

from __future__ import annotations

import torch

from furiosa_integrations.backends.torch.decoders.model import Rotary
from furiosa_integrations.backends.torch.decoders.rope import RotaryTables, cos_sin


def test_looked_up_rows_are_the_computed_ones_across_growth() -> None:
    dim = 24  # partial rotary: 12 frequencies, not a multiple of a vector's lanes
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    tables = [Rotary(inv_freq, 1.0, dim), Rotary(inv_freq * 0.25, 0.9, dim)]
    lookup = RotaryTables(tables, torch.float32)
    for positions in (torch.tensor([0, 7, 255]), torch.tensor([3000, 5]), torch.arange(300)):
        cos, sin = lookup(positions)
        for table, c, s in zip(tables, cos, sin, strict=True):
            want_c, want_s = cos_sin(table, positions, torch.float32)
            # each row alone, as a decode step of one sequence computes it
            alone = [cos_sin(table, p.view(1), torch.float32) for p in positions[:3]]
            assert torch.equal(c, want_c) and torch.equal(s, want_s)
            assert all(torch.equal(c[i], a[0][0]) for i, a in enumerate(alone))
    assert lookup.length >= 3001
    assert lookup(torch.tensor([], dtype=torch.long))[0][0].shape == (0, 1, dim)
