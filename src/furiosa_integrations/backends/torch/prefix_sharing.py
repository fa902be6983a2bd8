"""Prefix sharing: a new sequence copies the K/V of a prompt prefix it shares with one
already in the cache, instead of computing it again."""

from __future__ import annotations

from collections.abc import Iterable

from .sequence_state import SequenceState

# Shorter shared prefixes are not worth a copy (and a chat template's header is ~30 tokens).
MIN_SHARED_PREFIX = 16


def common_prefix(prompt: list[int], sequence: list[int], cached: int) -> int:
    """Tokens ``prompt`` shares with the first ``cached`` tokens of ``sequence``; the last
    prompt token is never shared (it is always computed, for its logits)."""
    limit = min(len(prompt) - 1, cached, len(sequence))
    n = 0
    while n < limit:  # compare in blocks at C speed, then token by token
        block = min(64, limit - n)
        if prompt[n : n + block] == sequence[n : n + block]:
            n += block
            continue
        while n < limit and prompt[n] == sequence[n]:
            n += 1
        break
    return n


def longest_shared_prefix(
    request: SequenceState, candidates: Iterable[SequenceState], cached_only: bool
) -> tuple[SequenceState | None, int]:
    """The candidate sharing the longest prompt prefix with ``request`` (at least
    ``MIN_SHARED_PREFIX`` tokens), counting what is in its cache now, or
    (``cached_only=False``) what will be once its prompt is prefilled."""
    best: SequenceState | None = None
    best_len = 0
    for other in candidates:
        cached = other.cached_len if cached_only else len(other.prompt_token_ids)
        n = common_prefix(request.prompt_token_ids, other.token_ids, cached)
        if n > best_len:
            best, best_len = other, n
    if best_len < MIN_SHARED_PREFIX:
        return None, 0
    return best, best_len


__all__ = ["MIN_SHARED_PREFIX", "common_prefix", "longest_shared_prefix"]
