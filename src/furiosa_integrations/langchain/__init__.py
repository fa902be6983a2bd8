"""LangChain integration: ``FuriosaChat``, ``FuriosaLLM`` and ``FuriosaEmbeddings``.

Needs ``langchain-core`` (``pip install 'furiosa-integrations[langchain]'``).
"""

from .chat_models import FuriosaChat
from .embeddings import FuriosaEmbeddings
from .llms import FuriosaLLM

__all__ = ["FuriosaChat", "FuriosaEmbeddings", "FuriosaLLM"]
