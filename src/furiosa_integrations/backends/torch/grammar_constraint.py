"""One request's grammar state: which tokens may come next, and how it ends in budget.

``GrammarConstraint`` wraps an xgrammar matcher. Besides masking each step to what the
grammar allows, it sees to it that a constrained output is valid when it ends:

- the budget: once the tokens left are about what the grammar needs to complete the open
  structure, it checks each sampled token, and when that token would leave too little
  room, it follows the shortest completion instead (``grammar_closing``);
- runaway repetition: greedy decoding of a small model can repeat an array element or a
  phrase inside a string until the budget runs out; when the output starts repeating the
  same block of tokens, it completes the structure the shortest way (and, outside one,
  ends the output). In free text that a tag closes (the reasoning before a constrained
  answer) it writes only the closing tag, and the model goes on with the answer.

Either way the output parses; the engine still reports ``finish_reason="length"`` when the
budget ran out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .grammar_closing import CompletionPlanner

# Re-plan each step once the tokens left fall under this (or twice the last plan + 8).
_CHECK_BELOW = 24
# A block of k tokens repeated this many times in a row is a loop (single tokens need
# more: "1000000" is a number, not a loop).
_REPEATS = {1: 12, 2: 6}
_REPEATS_LONGER = 3
_LONGEST_BLOCK = 24


def repeats_itself(tokens: Sequence[int]) -> bool:
    """Whether ``tokens`` ends with one block of tokens repeated (see ``_REPEATS``)."""
    n = len(tokens)
    for size in range(1, _LONGEST_BLOCK + 1):
        times = _REPEATS.get(size, _REPEATS_LONGER)
        if n < size * times:
            break
        block = tokens[n - size :]
        if all(tokens[n - (j + 1) * size : n - j * size] == block for j in range(1, times)):
            return True
    return False


class GrammarConstraint:
    """One request's grammar state (an xgrammar matcher), advanced token by token."""

    __slots__ = (
        "_check_below",
        "_closers",
        "_failed",
        "_plan",
        "_stop",
        "_tokens",
        "cut_by_budget",
        "matcher",
        "planner",
    )

    def __init__(
        self,
        matcher: Any,
        planner: CompletionPlanner,
        stop_token_ids: Sequence[int] = (),
        initial_plan: int = 0,
        closers: Sequence[str] = (),
    ) -> None:
        self.matcher = matcher
        self.planner = planner
        self._closers = tuple(closers)  # tags that end free text (``</think>``)
        self._stop = list(stop_token_ids)
        self._failed = False
        self._plan: list[int] | None = None  # committed: the tokens that complete it
        self._tokens: list[int] = []  # accepted so far
        self._check_below = max(_CHECK_BELOW, 2 * initial_plan + 8)
        self.cut_by_budget = False  # completed early because the budget was running out

    # ---- masks ----

    def fill_bitmask(self, bitmask: torch.Tensor, row: int) -> bool:
        """Write the allowed next tokens into ``bitmask[row]``; False when all are allowed."""
        if self._plan:  # completing: only the planned token
            bitmask[row].zero_()
            token = self._plan[0]
            bitmask[row, token // 32] = 1 << (token % 32) if token % 32 < 31 else -(1 << 31)
            return True
        return bool(self.matcher.fill_next_token_bitmask(bitmask, row))

    def allowed_mask(self, vocab_size: int) -> torch.Tensor | None:
        """The unbatched path: a bool ``[V]`` mask (the sampler prefers ``fill_bitmask``)."""
        import xgrammar as xgr

        bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        if not self.fill_bitmask(bitmask, 0):
            return None
        probe = torch.zeros(1, vocab_size)
        xgr.apply_token_bitmask_inplace(probe, bitmask, vocab_size=vocab_size)
        return probe[0] == 0

    # ---- ending valid ----

    def choose(self, token: int, tokens_left: int) -> int:
        """The token to emit for the sampled ``token``, with ``tokens_left`` tokens of budget
        (this one included): ``token`` itself, or the next one of the shortest completion."""
        if self._plan:
            return self._plan.pop(0)
        if repeats_itself([*self._tokens, token]):
            return self._complete_now(token, escape=True)
        if tokens_left > self._check_below:
            return token
        after = self.matcher.fork()
        plan = (
            self.planner.plan(after, closers=self._closers) if after.accept_token(token) else None
        )
        if plan is not None and len(plan) <= tokens_left - 1:
            self._check_below = max(_CHECK_BELOW, 2 * len(plan) + 8)
            return token
        self.cut_by_budget = True
        return self._complete_now(token)

    def _complete_now(self, token: int, escape: bool = False) -> int:
        """Commit to the shortest completion from here (instead of ``token``); ``escape``:
        out of free text only its closing tag."""
        plan = self.planner.plan(self.matcher, closers=self._closers, escape=escape)
        if plan is None:
            return token  # no completion found: nothing better to do than go on
        if not plan:  # complete already: end here, if a stop token may end it
            return self._stop[0] if self._stop else token
        self._plan = plan[1:]
        return plan[0]

    # ---- the engine's hooks ----

    def accept(self, token_id: int) -> None:
        # A refused token can only come from a mask that allowed nothing (e.g. min_tokens
        # banned the only allowed EOS): end the request rather than generate off-grammar.
        self._tokens.append(token_id)
        if not self.matcher.accept_token(token_id):
            self._failed = True

    def is_terminated(self) -> bool:
        return self._failed or bool(self.matcher.is_terminated())


__all__ = ["GrammarConstraint", "repeats_itself"]
