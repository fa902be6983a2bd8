"""Prefix sharing: a new sequence copies the K/V of a prompt prefix it shares with one
already in the cache (running, or finished and kept), instead of computing it again."""

from __future__ import annotations

from collections.abc import Iterable

from .sequence_state import PrefixHolder, SequenceState

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
    request: SequenceState, candidates: Iterable[PrefixHolder], cached_only: bool
) -> tuple[PrefixHolder | None, int]:
    """The candidate sharing the longest prompt prefix with ``request`` (at least
    ``MIN_SHARED_PREFIX`` tokens), counting what is in its cache now, or
    (``cached_only=False``) what will be once its prompt is prefilled."""
    best: PrefixHolder | None = None
    best_len = 0
    for other in candidates:
        cached = other.cached_len if cached_only else len(other.prompt_token_ids)
        n = common_prefix(request.prompt_token_ids, other.token_ids, cached)
        if n > best_len:
            best, best_len = other, n
    if best_len < MIN_SHARED_PREFIX:
        return None, 0
    return best, best_len


def best_prefix(
    request: SequenceState, cached: Iterable[PrefixHolder], admitted: list[SequenceState]
) -> tuple[PrefixHolder | None, int]:
    """Where ``request`` copies its prefix from, and how long it is: from K/V in the cache
    now (running or kept finished sequences), or from a request admitted in this same step,
    whose prefix is copied right after its prefill, in that step (no one waits for it)."""
    source, length = longest_shared_prefix(request, cached, cached_only=True)
    leaders = [r for r in admitted if r.prefix_source not in admitted]
    leader, shared = longest_shared_prefix(request, leaders, cached_only=False)
    if leader is not None and shared >= length + MIN_SHARED_PREFIX:
        return leader, shared
    return source, length


__all__ = ["MIN_SHARED_PREFIX", "best_prefix", "common_prefix", "longest_shared_prefix"]
