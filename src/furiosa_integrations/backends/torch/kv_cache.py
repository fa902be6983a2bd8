"""A slot-per-sequence KV cache that grows on demand.

Running sequences always occupy slots ``0..B-1`` (a finished sequence's slot is filled
by moving the last one into it), so the batched decode step reads the cache as a plain
view, with no gather.
"""

from __future__ import annotations

import torch


class SlotKVCache:
    def __init__(
        self,
        num_layers: int,
        num_kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
        max_len: int,
        initial_slots: int = 8,
        initial_len: int = 256,
        zeroed: bool = True,
    ) -> None:
        """``zeroed=False`` leaves positions nothing has written uninitialized, for readers
        that never read them (~20 ms of a load, and the pages come in as they are used)."""
        self.zeroed = zeroed
        self.num_layers = num_layers
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.dtype = dtype
        self.device = device
        self.max_len = max_len
        self.keys = self._alloc(initial_slots, min(initial_len, max_len))
        self.values = self._alloc(initial_slots, min(initial_len, max_len))

    def _alloc(self, slots: int, length: int) -> torch.Tensor:
        shape = (self.num_layers, slots, self.num_kv_heads, length, self.head_dim)
        make = torch.zeros if self.zeroed else torch.empty
        return make(shape, dtype=self.dtype, device=self.device)

    @property
    def num_slots(self) -> int:
        return self.keys.shape[1]

    @property
    def capacity(self) -> int:
        return self.keys.shape[3]

    def ensure(self, slots: int, length: int) -> None:
        """Grow (doubling) so that ``slots`` slots of ``length`` positions fit."""
        if slots <= self.num_slots and length <= self.capacity:
            return
        new_slots = self.num_slots
        while new_slots < slots:
            new_slots *= 2
        new_len = self.capacity
        while new_len < length:
            new_len *= 2
        new_len = min(max(new_len, length), self.max_len)
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = self._alloc(new_slots, new_len)
            new[:, : old.shape[1], :, : old.shape[3]] = old
            setattr(self, name, new)

    def move(self, src: int, dst: int, length: int) -> None:
        """Copy slot ``src``'s first ``length`` positions into slot ``dst``."""
        if src == dst or length == 0:
            return
        self.keys[:, dst, :, :length] = self.keys[:, src, :, :length]
        self.values[:, dst, :, :length] = self.values[:, src, :, :length]

    def read(self, slot: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of a slot's first ``length`` positions: ``[layers, heads, length, dim]``."""
        return (
            self.keys[:, slot, :, :length].clone(),
            self.values[:, slot, :, :length].clone(),
        )

    def write(self, slot: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Put K/V read by ``read`` (or a prefix of them) into slot ``slot``'s first positions."""
        length = keys.shape[2]
        self.keys[:, slot, :, :length] = keys
        self.values[:, slot, :, :length] = values

    def copy_prefix(self, src: int, dst: int, length: int) -> None:
        """Share a cached prompt prefix: copy it from ``src`` into ``dst``."""
        self.move(src, dst, length)

    def nbytes(self) -> int:
        return self.keys.numel() * self.keys.element_size() * 2
