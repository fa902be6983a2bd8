"""furiosa-integrations: LangChain and LlamaIndex on FuriosaAI RNGD (and torch everywhere else).

``from furiosa_integrations import FuriosaChat`` gives the LangChain chat model; the
adapters are imported lazily so that importing this package needs neither framework.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LANGCHAIN = ("FuriosaChat", "FuriosaLLM", "FuriosaEmbeddings", "FuriosaRerank")


def __getattr__(name: str) -> Any:
    if name in _LANGCHAIN:
        from . import langchain

        return getattr(langchain, name)
    raise AttributeError(f"module 'furiosa_integrations' has no attribute {name!r}")


__all__ = ["FuriosaChat", "FuriosaEmbeddings", "FuriosaLLM", "FuriosaRerank", "__version__"]
