"""One generation request's state inside the torch engine: its slot, cache and sampling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..loop_sink import LoopSink
from .decoders.interface import DecoderCache
from .sampler import SamplingState


class PrefixHolder(Protocol):
    """What a new sequence can copy a cached prefix from: a running sequence, or a
    finished one kept in ``finished_cache``."""

    @property
    def token_ids(self) -> list[int]: ...

    @property
    def cached_len(self) -> int: ...

    @property
    def prompt_token_ids(self) -> list[int]: ...

    def copy_prefix_into(self, cache: DecoderCache, slot: int, length: int) -> None: ...


@dataclass(eq=False)  # compared and looked up by identity
class SequenceState:
    request_id: str
    prompt_token_ids: list[int]
    max_tokens: int
    state: SamplingState
    sink: LoopSink
    slot: int = -1
    cached_len: int = 0  # tokens whose K/V are in the slot
    num_cached_prompt_tokens: int = 0
    pending_token: int | None = None  # sampled, not yet fed to the model
    prefix_source: PrefixHolder | None = None  # whose cached prefix we copy
    finished: bool = False

    @property
    def token_ids(self) -> list[int]:
        """The prompt and what has been generated so far."""
        return self.prompt_token_ids + self.state.output_token_ids

    def copy_prefix_into(self, cache: DecoderCache, slot: int, length: int) -> None:
        cache.copy_prefix(self.slot, slot, length)


__all__ = ["PrefixHolder", "SequenceState"]
