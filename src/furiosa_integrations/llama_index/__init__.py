"""LlamaIndex adapters: ``FuriosaLLM`` (a ``FunctionCallingLLM``), ``FuriosaEmbedding`` and
``FuriosaRerank`` (a node postprocessor); ``FuriosaTokenizer`` counts the model's tokens.

Needs the ``llama-index`` extra (``llama-index-core``).
"""

from .embedding import FuriosaEmbedding
from .llm import FuriosaLLM
from .rerank import FuriosaRerank
from .tokenizer import FuriosaTokenizer

__all__ = ["FuriosaEmbedding", "FuriosaLLM", "FuriosaRerank", "FuriosaTokenizer"]
