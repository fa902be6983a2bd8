"""Per-request sampling inside one batched step.

Greedy rows take the argmax; sampled rows apply temperature, top-k, top-p and min-p
together, then draw with their own ``torch.Generator`` so a seeded request gives the
same tokens whatever else shares the batch. A draw is one uniform number against the row's
cumulative distribution, not one random number per vocabulary entry: with a 49k vocabulary
that is ~0.07 ms a row instead of ~1.2 ms, what default settings (temperature 1) cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from ...core import NativeLogprob, SamplingParams
from .grammar import apply_bitmask
from .kernels.row_argmax import row_argmax


class TokenConstraint(Protocol):
    """A per-request grammar: which tokens may come next, and advance by one token."""

    def allowed_mask(self, vocab_size: int) -> torch.Tensor | None:
        """A bool ``[V]`` tensor of allowed tokens, or None when anything goes."""
        ...

    def choose(self, token: int, tokens_left: int) -> int:
        """The token to emit for the sampled ``token`` (the grammar may end the output
        another way to stay valid within ``tokens_left``)."""
        ...

    def accept(self, token_id: int) -> None: ...

    def is_terminated(self) -> bool: ...

    @property
    def cut_by_budget(self) -> bool:
        """Whether the output was completed early because the budget was running out."""
        ...


class ConstraintFactory(Protocol):
    """Builds each constrained request's ``TokenConstraint``; ``check`` compiles one before
    it is queued, so an invalid schema, regex or grammar fails early."""

    def __call__(self, params: SamplingParams) -> TokenConstraint | None: ...

    def check(self, params: SamplingParams) -> None: ...


@runtime_checkable
class BitmaskConstraint(Protocol):
    """A constraint that can write its mask into a shared packed bitmask (xgrammar's layout:
    int32 words, bit ``t % 32`` of word ``t // 32`` set when token ``t`` is allowed), so a
    whole batch is masked in one call instead of one bool tensor per row."""

    def fill_bitmask(self, bitmask: torch.Tensor, row: int) -> bool:
        """Fill ``bitmask[row]``; return False when every token is allowed."""
        ...


@dataclass
class SamplingState:
    """What the sampler needs to know about one running request."""

    params: SamplingParams
    generator: torch.Generator | None
    eos_token_ids: frozenset[int]
    prompt_token_ids: list[int]
    max_tokens: int = 1 << 30  # this request's budget (after the context's room)
    output_token_ids: list[int] = field(default_factory=list)
    constraint: TokenConstraint | None = None

    @property
    def tokens_left(self) -> int:
        """Tokens this request may still generate, the next one included."""
        return self.max_tokens - len(self.output_token_ids)

    def banned_until_min_tokens(self) -> list[int]:
        if len(self.output_token_ids) >= self.params.min_tokens:
            return []
        banned = set(self.params.stop_token_ids or ())
        banned |= self.eos_token_ids
        return sorted(banned)


def _apply_penalties(logits: torch.Tensor, state: SamplingState) -> None:
    p = state.params
    if p.repetition_penalty != 1.0:
        seen = torch.tensor(
            sorted(set(state.prompt_token_ids) | set(state.output_token_ids)),
            dtype=torch.long,
            device=logits.device,
        )
        if seen.numel():
            values = logits[seen]
            logits[seen] = torch.where(
                values > 0, values / p.repetition_penalty, values * p.repetition_penalty
            )
    if (p.presence_penalty or p.frequency_penalty) and state.output_token_ids:
        ids, counts = torch.tensor(state.output_token_ids, device=logits.device).unique(
            return_counts=True
        )
        logits[ids] -= p.frequency_penalty * counts.to(logits.dtype) + p.presence_penalty


def _filter(probs: torch.Tensor, top_k: int, top_p: float, min_p: float) -> None:
    """Zero out tokens outside top-k / top-p / min-p, in place (one row)."""
    if top_k > 0 and top_k < probs.shape[-1]:
        kth = torch.topk(probs, top_k).values[-1]
        probs.masked_fill_(probs < kth, 0.0)
    if top_p < 1.0:
        _nucleus(probs, top_p)
    if min_p > 0.0:
        probs.masked_fill_(probs < min_p * probs.max(), 0.0)


# How many of the most likely tokens top-p sorts first; 16x more each time they fall short.
NUCLEUS_FIRST = 64


def _nucleus(probs: torch.Tensor, top_p: float) -> None:
    """Top-p, in place: keep the most likely tokens while the mass before each is at most
    ``top_p`` of the total. Only the head of the distribution is sorted (``topk``), as far as
    the kept tokens reach: sorting a 49k vocabulary costs ~3.5 ms a row on a CPU core."""
    vocab = probs.shape[-1]
    limit = top_p * probs.sum()
    k = min(NUCLEUS_FIRST, vocab)
    while True:
        values, order = torch.topk(probs, k)  # sorted, most likely first
        cumulative = torch.cumsum(values, dim=-1)
        # Past the top k every token has at least cumulative[-1] before it.
        if k == vocab or bool(cumulative[-1] > limit):
            break
        k = min(k * 16, vocab)
    dropped = torch.ones_like(probs, dtype=torch.bool)
    dropped[order[(cumulative - values) <= limit]] = False
    probs.masked_fill_(dropped, 0.0)


# Tokens less likely than NEVER_DRAWN times the most likely one get no share: a draw
# resolves 2**-53 of the total anyway. Logits are raised to LOWEST_LOGIT (below the top one)
# first, as exp's results below ~e**-87 are denormal floats, made ~15x slower (16 rows of a
# 49k vocabulary at temperature 0.1: 8.9 ms instead of 0.6).
LOWEST_LOGIT = -80.0
NEVER_DRAWN = 1e-34  # above e**-80

# Tokens per block of a draw: a block is picked by the blocks' sums, then a token in it.
DRAW_BLOCK = 256


def _draw(probs: torch.Tensor, generators: Sequence[torch.Generator | None]) -> torch.Tensor:
    """One token per row of ``probs`` ``[R, V]`` (unnormalized; zeros never drawn), each
    row with its own generator: one uniform number against the row's cumulative sum, in
    float64 so that even the least likely tokens keep their share. The sum is taken in two
    levels (blocks of ``DRAW_BLOCK`` tokens, then the tokens of the block drawn), so no
    ``[R, V]`` float64 tensor is made: on the compute thread a fresh one page-faults every
    step (2,300 faults, ~6 ms for 16 rows of a 49k vocabulary). Stays on the device."""
    rows, vocab = probs.shape
    whole = vocab // DRAW_BLOCK * DRAW_BLOCK
    sums = probs[:, :whole].reshape(rows, -1, DRAW_BLOCK).sum(dim=-1)
    if whole < vocab:  # the last, shorter block
        sums = torch.cat([sums, probs[:, whole:].sum(dim=-1, keepdim=True)], dim=1)
    u = torch.cat(
        [torch.rand(1, dtype=torch.float64, generator=g, device=probs.device) for g in generators]
    ).unsqueeze(1)
    block, rest = _search(torch.cumsum(sums.double(), dim=-1), u)
    positions = block * DRAW_BLOCK + torch.arange(DRAW_BLOCK, device=probs.device)
    values = probs.gather(1, positions.clamp(max=vocab - 1))
    values.masked_fill_(positions >= vocab, 0.0)
    token, _ = _search(torch.cumsum(values.double(), dim=-1), rest)
    return (block * DRAW_BLOCK + token).squeeze(1)


def _search(cdf: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of ``cdf`` ``[R, n]`` (a cumulative sum), the entry that ``u * total`` falls
    in (``u`` in [0, 1), ``[R, 1]``), and where in that entry it falls, as a fraction of it."""
    total = cdf[:, -1:].contiguous()
    at = torch.searchsorted(cdf, u * total, right=True)
    # u < 1, but u * total may round up to the total: never past the last entry with mass
    at = torch.minimum(at, torch.searchsorted(cdf, total))
    start = torch.where(at > 0, cdf.gather(1, (at - 1).clamp(min=0)), 0.0)
    size = cdf.gather(1, at) - start
    fraction = ((u * total - start) / size).clamp(0.0, 1.0 - 2**-53)
    return at, fraction


def _apply_constraints(logits: torch.Tensor, states: Sequence[SamplingState]) -> None:
    """Mask each constrained row to the tokens its grammar allows next."""
    vocab = logits.shape[-1]
    packed_rows: list[int] = []
    bitmask: torch.Tensor | None = None
    for row, state in enumerate(states):
        constraint = state.constraint
        if constraint is None:
            continue
        if isinstance(constraint, BitmaskConstraint):
            if bitmask is None:
                bitmask = torch.full((len(states), (vocab + 31) // 32), -1, dtype=torch.int32)
            if constraint.fill_bitmask(bitmask, row):
                packed_rows.append(row)
            continue
        allowed = constraint.allowed_mask(vocab)
        if allowed is not None:
            logits[row].masked_fill_(~allowed.to(logits.device), float("-inf"))
    if packed_rows and bitmask is not None:
        apply_bitmask(logits, bitmask, packed_rows)


def _is_plain_greedy(state: SamplingState) -> bool:
    """Greedy with nothing to apply first: no penalties, bans, grammar or logprobs."""
    p = state.params
    return (
        p.greedy
        and state.constraint is None
        and p.logprobs is None
        and p.repetition_penalty == 1.0
        and not p.presence_penalty
        and not p.frequency_penalty
        and len(state.output_token_ids) >= p.min_tokens
    )


def sample(
    logits: torch.Tensor, states: Sequence[SamplingState]
) -> tuple[list[int], list[NativeLogprob | None]]:
    """Choose one token per row of ``logits`` ``[B, V]``."""
    if all(_is_plain_greedy(s) for s in states):  # the common case: one argmax, no row loop
        return row_argmax(logits).tolist(), [None] * len(states)
    for row, state in enumerate(states):
        row_logits = logits[row]
        _apply_penalties(row_logits, state)
        banned = state.banned_until_min_tokens()
        if banned:
            row_logits[torch.tensor(banned, device=logits.device)] = float("-inf")
    _apply_constraints(logits, states)

    want_logprobs = [s.params.logprobs is not None for s in states]
    logprobs = torch.log_softmax(logits, dim=-1) if any(want_logprobs) else None

    sampled_rows = [i for i, s in enumerate(states) if not s.params.greedy]
    if len(sampled_rows) < len(states):
        chosen = row_argmax(logits)
    else:  # no greedy row: every entry is drawn below
        chosen = torch.empty(len(states), dtype=torch.long, device=logits.device)
    if sampled_rows:
        # All sampled rows at once (each row's values are its own, whatever the batch), in
        # place (the logits are this step's own; logprobs and argmax were taken above): no
        # [B, V] temporaries, which page-fault afresh on the compute thread each step.
        rows = logits if len(sampled_rows) == len(states) else logits[sampled_rows]
        temperatures = torch.tensor(
            [states[row].params.temperature for row in sampled_rows], dtype=logits.dtype
        ).to(logits.device)
        rows.div_(temperatures.unsqueeze(1))
        rows.sub_(rows.amax(dim=-1, keepdim=True)).clamp_(min=LOWEST_LOGIT)
        probs = rows.exp_()  # softmax's numerators, the most likely token's 1
        # masked (-inf) tokens among them
        torch.nn.functional.threshold(probs, NEVER_DRAWN, 0.0, inplace=True)
        for i, row in enumerate(sampled_rows):
            p = states[row].params
            _filter(probs[i], p.top_k, p.top_p, p.min_p)
        generators = [states[row].generator for row in sampled_rows]
        chosen[sampled_rows] = _draw(probs, generators).to(chosen.dtype)
    tokens = chosen.tolist()
    for row, state in enumerate(states):  # a grammar may end its output another way
        if state.constraint is not None:
            tokens[row] = state.constraint.choose(tokens[row], state.tokens_left)

    out: list[NativeLogprob | None] = [None] * len(states)
    if logprobs is not None:
        for row, state in enumerate(states):
            k = state.params.logprobs
            if k is None:
                continue
            top: list[tuple[int, float]] = []
            if k > 0:
                values, ids = torch.topk(logprobs[row], k)
                top = list(zip(ids.tolist(), values.tolist(), strict=True))
            out[row] = NativeLogprob(float(logprobs[row, tokens[row]]), top)
    return tokens, out
