"""``validate_model_on_init``: load the model when a LangChain object is built.

LangChain's classes load their engine on first use, so building one is instant; with
``validate_model_on_init=True`` (langchain-ollama's name for it) the engine loads at
construction instead, as LlamaIndex's classes always do: a wrong model path fails there,
and what is read off the engine (``FuriosaChat.profile``) is there from the start.
"""

from __future__ import annotations

from pydantic import model_validator
from typing_extensions import Self

from ..adapter_fields import EngineChoice


class LoadsOnInit(EngineChoice):
    validate_model_on_init: bool = False
    """Load the model (and so check it) when the object is built, instead of on first
    use. Readers of ``profile`` that look before the first call, such as LangChain's
    ``SummarizationMiddleware`` with a fractional trigger, need it."""

    @model_validator(mode="after")
    def _load_on_init(self) -> Self:
        if self.validate_model_on_init:
            self._get_engine()
        return self


__all__ = ["LoadsOnInit"]
