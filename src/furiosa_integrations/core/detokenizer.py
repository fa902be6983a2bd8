"""Incremental detokenization with stop strings matched across token boundaries.

Text is decoded from a short window of earlier tokens so that multi-byte characters and
leading spaces come out right, and up to ``len(longest stop) - 1`` characters are held
back while streaming, since they may turn out to begin a stop string.
"""

from __future__ import annotations

from .tokenizer import Tokenizer

_PROMPT_WINDOW = 5  # prompt tokens decoded with the first output token (leading spaces)


class IncrementalDetokenizer:
    def __init__(
        self,
        tokenizer: Tokenizer,
        prompt_token_ids: list[int],
        *,
        skip_special_tokens: bool = True,
        stop: list[str] | None = None,
        include_stop_str_in_output: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.stop = list(stop or [])
        self.include_stop = include_stop_str_in_output
        self._hold = max((len(s) for s in self.stop), default=1) - 1
        self._tokens = list(prompt_token_ids[-_PROMPT_WINDOW:])
        self._prefix_offset = 0
        self._read_offset = len(self._tokens)
        self.text = ""  # all output text so far (already cut at a stop string)
        self._emitted = 0  # characters of ``text`` already returned by ``take``
        self._checked = 0  # characters of ``text`` already searched for stop strings
        self.stop_reason: str | None = None

    def _decode(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(tokens, skip_special_tokens=self.skip_special_tokens))

    def add(self, token_ids: list[int]) -> None:
        """Append generated tokens; after a stop string matches, further tokens are ignored."""
        if self.stop_reason is not None or not token_ids:
            return
        self._tokens.extend(token_ids)
        prefix = self._decode(self._tokens[self._prefix_offset : self._read_offset])
        full = self._decode(self._tokens[self._prefix_offset :])
        if full.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for more bytes
            return
        self.text += full[len(prefix) :]
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._tokens)
        self._match_stop()

    def _match_stop(self) -> None:
        if not self.stop:
            return
        start = max(0, self._checked - self._hold)
        best: tuple[int, str] | None = None
        for s in self.stop:
            index = self.text.find(s, start)
            if index != -1 and (best is None or index < best[0]):
                best = (index, s)
        self._checked = len(self.text)
        if best is not None:
            index, s = best
            self.text = self.text[: index + (len(s) if self.include_stop else 0)]
            self.stop_reason = s

    def take(self, final: bool = False) -> str:
        """The text not yet returned, holding back a possible stop-string prefix unless final."""
        end = len(self.text)
        if not final and self.stop_reason is None:
            end = max(self._emitted, end - self._hold)
        delta = self.text[self._emitted : end]
        self._emitted = end
        return delta
