"""LlamaIndex adapters: ``FuriosaLLM`` (a ``FunctionCallingLLM``) and ``FuriosaEmbedding``.

Needs the ``llama-index`` extra (``llama-index-core``).
"""

from .embedding import FuriosaEmbedding
from .llm import FuriosaLLM

__all__ = ["FuriosaEmbedding", "FuriosaLLM"]
