"""``FuriosaEmbedding``: a LlamaIndex ``BaseEmbedding`` on the shared Furiosa engine.

LlamaIndex splits batches by ``embed_batch_size``; each batch is one engine call. The
async methods await the engine directly, so concurrent calls (a query engine serving
many users, ``num_workers``) are merged into shared forward passes by the engine.
"""

from __future__ import annotations

from typing import Any, ClassVar

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field

from ..adapter_fields import EngineChoice, RefusesUnknownArguments
from ..core import PoolingParams, Task


class FuriosaEmbedding(RefusesUnknownArguments, BaseEmbedding, EngineChoice):
    """Embeddings served in-process by the Furiosa engine (RNGD, or torch elsewhere).

    With no arguments it runs the bundled default embedding model (all-MiniLM-L6-v2,
    384 dimensions, normalized). ``model``, ``backend``, ``device``, ``dtype`` or an
    explicit ``engine`` choose another, as for ``FuriosaLLM``; the engine loads at
    construction.
    """

    _task: ClassVar[Task] = "embed"

    embed_batch_size: int = Field(
        default=32, gt=0, le=2048, description="Texts per engine call in batch embedding."
    )
    normalize: bool = Field(default=True, description="L2-normalize the vectors.")
    dimensions: int | None = Field(
        default=None, gt=0, description="Keep the first N dimensions (Matryoshka models)."
    )
    query_instruction: str = Field(
        default="", description="Prefix for queries (for models trained with one, e.g. e5)."
    )
    text_instruction: str = Field(
        default="", description="Prefix for documents (for models trained with one)."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        engine = self._get_engine()
        if self.model_name == "unknown":
            self.model_name = engine.model_name

    @classmethod
    def class_name(cls) -> str:
        return "FuriosaEmbedding"

    def _params(self) -> PoolingParams:
        return PoolingParams(normalize=self.normalize, dimensions=self.dimensions)

    async def _aembed(self, texts: list[str]) -> list[Embedding]:
        return await self._get_engine().embed(texts, self._params())

    def _embed(self, texts: list[str]) -> list[Embedding]:
        return self._get_engine().embed_sync(texts, self._params())

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embed([_prefixed(self.query_instruction, query)])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self._aembed([_prefixed(self.query_instruction, query)]))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._embed([_prefixed(self.text_instruction, text)])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aembed([_prefixed(self.text_instruction, text)]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._embed([_prefixed(self.text_instruction, t) for t in texts])

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await self._aembed([_prefixed(self.text_instruction, t) for t in texts])


def _prefixed(instruction: str, text: str) -> str:
    """``text`` with its instruction; what is not a string goes on as is, so the engine
    refuses it with a typed error instead of a ``TypeError`` here."""
    return instruction + text if isinstance(text, str) else text
