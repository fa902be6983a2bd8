"""The shortest way a constrained output can end, so it ends valid whatever the budget.

From a grammar matcher's state, ``CompletionPlanner.plan`` finds a short text the grammar
accepts up to a complete structure (close the string, the array, the object; write the
required fields that are still missing with the shortest values they allow) and spells it
in tokens. The constraint (``grammar.GrammarConstraint``) follows that plan once the
tokens left are what the plan needs, or once the output starts repeating itself.

The search walks characters in an order that closes structures first (quote, brackets,
separators, then digits, then the rest), taking every forced stretch of the grammar at
once (xgrammar's jump-forward string). That finds a short completion after a few dozen
matcher forks (~0.1-0.5 ms); it is not always the very shortest (a number may come out
as ``100`` where ``18`` was allowed), which the budget check leaves room for.

Free text with a closing tag (a reasoning section before the constrained answer, up to
``</think>``) has no short completion character by character; the grammar's ``closers``
(the tags that end such text) are tried as whole moves first.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

# Closers first: inside a string the quote ends it, after a value the bracket or the
# separator; digits before letters (the shortest number is short); letters for enums,
# literals and keys.
_ORDER = '"}],:0123456789{[tfn-.eE+ ' + string.ascii_letters + string.punctuation
_ALPHABET = "".join(dict.fromkeys(_ORDER))  # each character once, in that order
_MAX_FORKS = 4000  # give up on a grammar that needs more search than this
_FREE_TEXT_FORKS = 200  # where free text may be open, search this much before the closers
_MAX_TOKEN_BYTES = 16


class CompletionPlanner:
    """Plans completions for one model's vocabulary (xgrammar's decoded vocabulary)."""

    def __init__(self, decoded_vocab: Sequence[bytes], special_token_ids: Sequence[int]) -> None:
        special = set(special_token_ids)
        self._by_bytes: dict[bytes, int] = {}
        for token_id, piece in enumerate(decoded_vocab):
            piece = bytes(piece)
            if 0 < len(piece) <= _MAX_TOKEN_BYTES and token_id not in special:
                self._by_bytes.setdefault(piece, token_id)

    def plan(
        self,
        matcher: Any,
        max_chars: int = 512,
        closers: Sequence[str] = (),
        escape: bool = False,
    ) -> list[int] | None:
        """Tokens that take ``matcher`` (not changed) to a complete structure; ``[]`` when
        it is complete already, ``None`` when no completion was found.

        ``closers``: tags that end free text in this grammar; the shorter of the plain
        search and a closer's completion wins. ``escape``: when a closer wins, only the
        closer (leave the free text, let the model write the rest)."""
        if matcher.is_completed():
            return []
        budget = _FREE_TEXT_FORKS if closers else _MAX_FORKS
        text = _complete(matcher.fork(), max_chars, [budget])
        taken = text  # what to follow: the completion, or (escape) only its closer
        for closer in closers:
            branch = matcher.fork()
            if not branch.accept_string(closer):
                continue
            rest = _complete(branch, max_chars - len(closer), [_MAX_FORKS])
            if rest is not None and (text is None or len(closer) + len(rest) < len(text)):
                text = closer + rest
                taken = closer if escape else text
        if text is None and closers:  # no closer applies here: search as hard as usual
            taken = _complete(matcher.fork(), max_chars, [_MAX_FORKS])
        return None if taken is None else self._spell(matcher.fork(), taken)

    def _spell(self, matcher: Any, text: str) -> list[int] | None:
        """``text`` in as few tokens as the vocabulary allows (longest match first); every
        token is one the grammar accepts, since the grammar accepted each of its bytes."""
        data = text.encode()
        tokens: list[int] = []
        i = 0
        while i < len(data):
            for size in range(min(_MAX_TOKEN_BYTES, len(data) - i), 0, -1):
                token = self._by_bytes.get(data[i : i + size])
                if token is not None and matcher.accept_token(token):
                    tokens.append(token)
                    i += size
                    break
            else:
                return None  # a byte no single token spells (no byte fallback): give up
        return tokens


def _complete(matcher: Any, chars_left: int, forks_left: list[int]) -> str | None:
    """Depth first, closers first: a string that completes ``matcher`` (which it changes)."""
    if matcher.is_completed():
        return ""
    forced = matcher.find_jump_forward_string()
    if forced:
        if len(forced) > chars_left or not matcher.accept_string(forced):
            return None
        rest = _complete(matcher, chars_left - len(forced), forks_left)
        return None if rest is None else forced + rest
    if chars_left == 0:
        return None
    for char in _ALPHABET:
        if forks_left[0] <= 0:
            return None
        forks_left[0] -= 1
        branch = matcher.fork()
        if branch.accept_string(char):
            rest = _complete(branch, chars_left - 1, forks_left)
            if rest is not None:
                return char + rest
    return None


__all__ = ["CompletionPlanner"]
