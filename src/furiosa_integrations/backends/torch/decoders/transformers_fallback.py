"""Any causal LM transformers can load, under our scheduler, one sequence per forward.

The slower path, for architectures without a native family: each slot keeps its own
transformers cache object and token history, and every step runs the model once per
sequence (so outputs cannot depend on the batch). Prefix sharing copies a slot's cache
and crops it; a cache that cannot be cropped (recurrent and some sliding-window layers)
is rebuilt from the kept tokens on the next step instead, which is slower but the same.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .interface import PrefillSegment


@dataclass
class _Slot:
    tokens: list[int] = field(default_factory=list)  # every token whose state is cached
    state: Any = None  # transformers' cache after ``tokens``; None: rebuild from ``tokens``


class PerSequenceCache:
    """The engine's slot cache interface over per-slot transformers caches."""

    def __init__(self) -> None:
        self.slots: dict[int, _Slot] = {}

    def ensure(self, slots: int, length: int) -> None:
        """transformers' caches grow by themselves."""

    def slot(self, index: int) -> _Slot:
        return self.slots.setdefault(index, _Slot())

    def move(self, src: int, dst: int, length: int) -> None:
        if src == dst or length == 0:
            return
        moved = self.slots.pop(src, _Slot())
        if len(moved.tokens) != length:
            moved = _Slot(moved.tokens[:length])
        self.slots[dst] = moved

    def copy_prefix(self, src: int, dst: int, length: int) -> None:
        source = self.slot(src)
        state = None
        if source.state is not None:
            state = _cropped_copy(source.state, len(source.tokens), length)
        self.slots[dst] = _Slot(source.tokens[:length], state)


def _cropped_copy(state: Any, current: int, length: int) -> Any:
    """A copy of ``state`` holding only its first ``length`` positions, or None if this
    cache type cannot be cut back."""
    try:
        clone = copy.deepcopy(state)
        if length < current:
            clone.crop(length - current)  # a negative count removes that many positions
        if clone.get_seq_length() != length:
            return None
        return clone
    except Exception:
        return None


class TransformersDecoder:
    """``AutoModelForCausalLM``'s forward, per sequence, with transformers' own cache."""

    native = False
    family = "transformers"

    def __init__(self, path: Path, device: torch.device, dtype: torch.dtype) -> None:
        from transformers import AutoModelForCausalLM

        model: Any = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
        self.model: Any = model.to(device).eval()
        self.device = device
        self.weights = str(dtype).removeprefix("torch.")
        head = self.model.get_output_embeddings()
        self.vocab_size = int(head.weight.shape[0]) if head is not None else 0
        self.vocab_size = self.vocab_size or int(self.model.config.get_text_config().vocab_size)
        self.cache = PerSequenceCache()
        # transformers 5 renamed the cache argument; older releases take past_key_values.
        params = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    def _run(self, slot: _Slot, new: list[int]) -> torch.Tensor:
        """Feed ``new`` after the slot's cached tokens; return the last position's logits."""
        if slot.state is None and slot.tokens:  # rebuild an uncroppable cache
            new, slot.tokens = slot.tokens + new, []
        ids = torch.tensor([new], dtype=torch.long, device=self.device)
        kwargs = {self._cache_arg: slot.state} if slot.state is not None else {}
        out = self.model(input_ids=ids, use_cache=True, **kwargs)
        state = getattr(out, "cache", None)
        slot.state = state if state is not None else getattr(out, "past_key_values", None)
        slot.tokens = slot.tokens + new
        logits: torch.Tensor = out.logits[0, -1].float()
        return logits

    def settle(self) -> bool:
        return False  # nothing left from the load

    @torch.inference_mode()
    def prefill(self, tokens: torch.Tensor, segments: list[PrefillSegment]) -> torch.Tensor:
        rows = []
        for s in segments:
            slot = self.cache.slot(s.slot)
            if s.position == 0:
                slot.tokens, slot.state = [], None
            elif len(slot.tokens) != s.position:
                raise RuntimeError(
                    f"slot {s.slot} caches {len(slot.tokens)} tokens, not {s.position}"
                )
            rows.append(self._run(slot, tokens[s.start : s.start + s.length].tolist()))
        return torch.stack(rows)

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        rows = []
        for index, (token, position) in enumerate(
            zip(tokens.tolist(), positions.tolist(), strict=True)
        ):
            slot = self.cache.slot(index)
            if len(slot.tokens) != position:
                raise RuntimeError(f"slot {index} caches {len(slot.tokens)} tokens, not {position}")
            rows.append(self._run(slot, [token]))
        return torch.stack(rows)
