"""The tokenizer protocol: what the shared engine calls on a model's tokenizer.

transformers' tokenizers, furiosa-llm's (the same classes) and our ``FastTokenizer``
(``models/tokenizer.py``) all fit it; the engine needs nothing else of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> token ids, and the chat template (``None`` when the model has none)."""

    name_or_path: str
    chat_template: str | dict[str, str] | None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = False) -> str: ...

    def __call__(
        self,
        text: str | list[str],
        text_pair: str | list[str] | None = None,
        add_special_tokens: bool = True,
        truncation: bool = False,
        max_length: int | None = None,
        return_token_type_ids: bool | None = None,
    ) -> Mapping[str, Any]:
        """``{"input_ids": ...}`` for one text or a batch (pooling inputs); with
        ``text_pair``, the pairs a cross-encoder reads, and their ``token_type_ids``."""
        ...

    def apply_chat_template(
        self,
        conversation: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        documents: list[dict[str, Any]] | None = None,
        chat_template: str | None = None,
        add_generation_prompt: bool = False,
        tokenize: bool = True,
        **kwargs: Any,
    ) -> Any: ...


__all__ = ["Tokenizer"]
