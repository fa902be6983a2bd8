"""What the generation engine sees of a decoder: packed prefill, batched decode, a cache.

Every decoder, native family or transformers fallback, offers this interface, so the
continuous-batching scheduler above it does not know which one it drives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class PrefillSegment:
    """One sequence's new tokens inside a packed prefill batch."""

    slot: int
    start: int  # index of its first token in the packed batch
    length: int  # number of new tokens
    position: int  # position of its first new token (cached prefix length)


class DecoderCache(Protocol):
    """Per-slot cached state the engine grows, compacts and shares prefixes of."""

    def ensure(self, slots: int, length: int) -> None:
        """Make room for ``slots`` slots of ``length`` positions."""
        ...

    def move(self, src: int, dst: int, length: int) -> None:
        """Slot ``src``'s first ``length`` positions become slot ``dst``'s."""
        ...

    def copy_prefix(self, src: int, dst: int, length: int) -> None:
        """Slot ``dst`` starts with a copy of slot ``src``'s first ``length`` positions."""
        ...


class Decoder(Protocol):
    @property
    def family(self) -> str:
        """The model_type it runs natively, or "transformers" for the fallback."""
        ...

    @property
    def native(self) -> bool:
        """Our own batched forward (True) or transformers' model, one sequence at a time."""
        ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def weights(self) -> str:
        """How its linear weights are stored, for the load log (``"fp16 x121"``, ...)."""
        ...

    @property
    def cache(self) -> DecoderCache: ...

    def settle(self) -> bool:
        """One piece of work the load left for between steps; True while pieces are left."""
        ...

    def prefill(self, tokens: torch.Tensor, segments: list[PrefillSegment]) -> torch.Tensor:
        """Packed new tokens of several sequences -> each one's last logits ``[S, V]``."""
        ...

    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One new token for each of slots ``0..B-1`` at ``positions`` -> logits ``[B, V]``."""
        ...
