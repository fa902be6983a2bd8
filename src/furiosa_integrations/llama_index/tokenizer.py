"""``FuriosaTokenizer``: the model's own tokenizer as LlamaIndex's tokenizer callable.

LlamaIndex counts tokens with a callable ``text -> list of tokens`` (``Settings.tokenizer``,
the ``tokenizer_fn`` of ``Memory`` / ``ChatMemoryBuffer``, the ``tokenizer`` of
``SentenceSplitter`` / ``TokenTextSplitter``), tiktoken's GPT one by default. This one
counts the served model's tokens, as LlamaIndex uses a Hugging Face tokenizer: the text's
own tokens, without special tokens.

.. code-block:: python

    from llama_index.core import Settings
    from furiosa_integrations.llama_index import FuriosaLLM, FuriosaTokenizer

    llm = FuriosaLLM()
    Settings.tokenizer = FuriosaTokenizer(llm)   # or FuriosaTokenizer(embed_model) for chunks
"""

from __future__ import annotations

from typing import Protocol

from ..core import AsyncEngine


class _HasEngine(Protocol):
    def _get_engine(self, model: str | None = None) -> AsyncEngine: ...


class FuriosaTokenizer:
    """Text -> the token ids of the model that ``adapter`` (a ``FuriosaLLM``,
    ``FuriosaEmbedding`` or ``FuriosaRerank``) or ``engine`` serves."""

    def __init__(self, adapter: _HasEngine | AsyncEngine) -> None:
        self._adapter = adapter

    def _engine(self) -> AsyncEngine:
        if isinstance(self._adapter, AsyncEngine):
            return self._adapter
        return self._adapter._get_engine()  # follows the adapter if it reloads

    def __call__(self, text: str) -> list[int]:
        return self._engine().tokenize(text)

    def encode(self, text: str) -> list[int]:
        """The same, under the name tokenizer objects use."""
        return self(text)


__all__ = ["FuriosaTokenizer"]
