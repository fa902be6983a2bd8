"""``FuriosaEmbeddings``: LangChain embeddings on the shared pooling engine."""

from __future__ import annotations

from typing import ClassVar

from langchain_core.embeddings import Embeddings

from ..adapter_fields import RefusesUnknownArguments
from ..core import PoolingParams, Task
from .loading import LoadsOnInit


class FuriosaEmbeddings(RefusesUnknownArguments, LoadsOnInit, Embeddings):
    """Text embeddings on FuriosaAI RNGD, or on torch (CPU/CUDA) anywhere else, in-process.

    With no arguments it serves the bundled default model (all-MiniLM-L6-v2, 384
    dimensions, normalized). Each ``embed_documents`` call is one batched engine call;
    concurrent ``aembed_*`` calls are batched together by the engine.

    .. code-block:: python

        from furiosa_integrations import FuriosaEmbeddings

        embeddings = FuriosaEmbeddings()
        vectors = embeddings.embed_documents(["RNGD is an NPU.", "Paris is in France."])
        query = embeddings.embed_query("What is RNGD?")
    """

    _task: ClassVar[Task] = "embed"

    normalize: bool = True
    """Scale each vector to unit length (cosine similarity becomes a dot product)."""

    dimensions: int | None = None
    """Keep only the first ``dimensions`` components (Matryoshka-style models), then
    normalize; ``None`` keeps them all."""

    truncate_prompt_tokens: int | None = -1
    """Keep at most this many tokens of each text: ``-1`` truncates to the model's limit,
    ``None`` makes a longer text an error."""

    query_instruction: str = ""
    """Prepended to every query (for models trained with one, e.g. ``"query: "``)."""

    document_instruction: str = ""
    """Prepended to every document (e.g. ``"passage: "``)."""

    def _params(self) -> PoolingParams:
        return PoolingParams(
            normalize=self.normalize,
            dimensions=self.dimensions,
            truncate_prompt_tokens=self.truncate_prompt_tokens,
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, from one batched engine call."""
        if not texts:
            return []
        texts = [_prefixed(self.document_instruction, text) for text in texts]
        return _floats(self._get_engine().embed_sync(texts, self._params()))

    def embed_query(self, text: str) -> list[float]:
        query = _prefixed(self.query_instruction, text)
        vectors = self._get_engine().embed_sync([query], self._params())
        return _floats(vectors)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        texts = [_prefixed(self.document_instruction, text) for text in texts]
        return _floats(await self._get_engine().embed(texts, self._params()))

    async def aembed_query(self, text: str) -> list[float]:
        query = _prefixed(self.query_instruction, text)
        vectors = await self._get_engine().embed([query], self._params())
        return _floats(vectors)[0]


def _prefixed(instruction: str, text: str) -> str:
    """``text`` with its instruction; what is not a string goes on as is, so the engine
    refuses it with a typed error instead of a ``TypeError`` here."""
    return instruction + text if isinstance(text, str) else text


def _floats(vectors: list[list[float]]) -> list[list[float]]:
    """Plain Python floats (vector stores serialize them; numpy scalars break some)."""
    return [[float(x) for x in vector] for vector in vectors]


__all__ = ["FuriosaEmbeddings"]
