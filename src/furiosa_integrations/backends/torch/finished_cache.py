"""The cache of finished sequences: their K/V kept after they end, for the next turn.

A chat's next turn, and every step of an agent loop, sends the whole conversation again:
the previous turn's prompt and answer, then something new. Running requests already share
prompt prefixes (``prefix_sharing``); this keeps what finished requests computed too,
least recently used first out within a byte budget, so the next turn of the same
conversation prefills only what is new. An entry is a copy of the sequence's K/V taken
out of its slot when it finishes (the slot itself is reused at once).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from .decoders.interface import DecoderCache
from .kv_cache import SlotKVCache
from .sequence_state import SequenceState

# Entries shorter than this are not worth keeping (a chat template's header alone is ~30).
_MIN_TOKENS = 32


@dataclass(eq=False)  # looked up by identity
class FinishedSequence:
    """The K/V of a finished sequence's first ``cached_len`` tokens, out of any slot."""

    token_ids: list[int]
    keys: torch.Tensor  # [layers, kv_heads, cached_len, head_dim]
    values: torch.Tensor
    prompt_token_ids: list[int] = field(default_factory=list)

    @property
    def cached_len(self) -> int:
        return len(self.token_ids)

    def copy_prefix_into(self, cache: DecoderCache, slot: int, length: int) -> None:
        assert isinstance(cache, SlotKVCache)  # kept only for the native decoders' cache
        cache.write(slot, self.keys[:, :, :length], self.values[:, :, :length])

    @property
    def nbytes(self) -> int:
        return self.keys.numel() * self.keys.element_size() * 2


class FinishedSequenceCache:
    """Finished sequences' K/V, least recently used out first, within ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used_bytes = 0
        self._entries: OrderedDict[int, FinishedSequence] = OrderedDict()
        self.hits = 0  # prefixes served from here (for tests and benchmarks)

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[FinishedSequence]:
        return list(self._entries.values())

    def keep(self, sequence: SequenceState, cache: DecoderCache) -> None:
        """Copy a finishing sequence's K/V out of its slot (before the slot is reused)."""
        length = sequence.cached_len
        if length < _MIN_TOKENS or sequence.slot < 0 or not isinstance(cache, SlotKVCache):
            return
        keys, values = cache.read(sequence.slot, length)
        entry = FinishedSequence(sequence.token_ids[:length], keys, values)
        entry.prompt_token_ids = entry.token_ids
        if entry.nbytes > self.max_bytes:
            return
        self._entries[id(entry)] = entry
        self.used_bytes += entry.nbytes
        while self.used_bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.used_bytes -= evicted.nbytes

    def used(self, entry: FinishedSequence) -> None:
        """``entry`` served a prefix: it is the most recently used now."""
        if id(entry) in self._entries:
            self._entries.move_to_end(id(entry))
            self.hits += 1

    def clear(self) -> None:
        self._entries.clear()
        self.used_bytes = 0


__all__ = ["FinishedSequence", "FinishedSequenceCache"]
