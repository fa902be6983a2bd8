"""LangChain integration: ``FuriosaChat``, ``FuriosaLLM``, ``FuriosaEmbeddings`` and
``FuriosaRerank`` (a document compressor).

Needs ``langchain-core`` (``pip install 'furiosa-integrations[langchain]'``).
"""

from .chat_models import FuriosaChat
from .embeddings import FuriosaEmbeddings
from .llms import FuriosaLLM
from .rerank import FuriosaRerank

__all__ = ["FuriosaChat", "FuriosaEmbeddings", "FuriosaLLM", "FuriosaRerank"]
