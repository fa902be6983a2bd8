"""``FuriosaRerank``: a LangChain document compressor that reranks with a cross-encoder.

Use it where LangChain takes a ``BaseDocumentCompressor``, such as
``ContextualCompressionRetriever`` (``langchain-classic``): the retriever's documents are
scored against the query by the engine (one batched call; concurrent calls share forward
passes) and the ``top_n`` best come back, each with ``metadata["relevance_score"]``, as
LangChain's Cohere and cross-encoder rerankers return them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import Field

from ..adapter_fields import RefusesUnknownArguments
from ..core import PoolingParams, Task, ranked
from .loading import LoadsOnInit


class FuriosaRerank(RefusesUnknownArguments, BaseDocumentCompressor, LoadsOnInit):
    """Rerank documents with a cross-encoder on FuriosaAI RNGD, or on torch anywhere else.

    ``model`` is a local cross-encoder directory (a one-label
    ``*ForSequenceClassification`` checkpoint, as sentence-transformers' ``CrossEncoder``
    saves it); no reranker is bundled. Scores are the ``CrossEncoder``'s (its activation
    applied: in [0, 1] for the usual Sigmoid).

    .. code-block:: python

        from langchain_classic.retrievers import ContextualCompressionRetriever
        from furiosa_integrations.langchain import FuriosaRerank

        reranker = FuriosaRerank(model="/models/ms-marco-MiniLM-L6-v2", top_n=3)
        retriever = ContextualCompressionRetriever(
            base_compressor=reranker, base_retriever=store.as_retriever(search_kwargs={"k": 10})
        )
    """

    _task: ClassVar[Task] = "score"

    top_n: int | None = Field(default=3, ge=1)
    """How many documents to keep, best first; ``None`` keeps them all (reordered)."""

    truncate_prompt_tokens: int | None = -1
    """Cut a query-document pair longer than this many tokens (the longer text first):
    ``-1`` to the model's limit, ``None`` makes a longer pair an error."""

    def _params(self) -> PoolingParams:
        return PoolingParams(truncate_prompt_tokens=self.truncate_prompt_tokens)

    def rerank(
        self, documents: Sequence[str | Document], query: str, top_n: int | None = -1
    ) -> list[dict[str, Any]]:
        """``[{"index": i, "relevance_score": s}, ...]`` best first (``top_n=-1``: the
        field's ``top_n``), as ``CohereRerank.rerank`` returns them."""
        if not documents:
            return []
        scores = self._get_engine().score_sync(query, _texts(documents), self._params())
        return _results(scores, self.top_n if top_n == -1 else top_n)

    async def arerank(
        self, documents: Sequence[str | Document], query: str, top_n: int | None = -1
    ) -> list[dict[str, Any]]:
        """``rerank`` on the caller's event loop."""
        if not documents:
            return []
        scores = await self._get_engine().score(query, _texts(documents), self._params())
        return _results(scores, self.top_n if top_n == -1 else top_n)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """The ``top_n`` documents most relevant to ``query``, best first."""
        return _with_scores(documents, self.rerank(documents, query))

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return _with_scores(documents, await self.arerank(documents, query))


def _texts(documents: Sequence[str | Document]) -> list[str]:
    return [d.page_content if isinstance(d, Document) else d for d in documents]


def _results(scores: list[float], top_n: int | None) -> list[dict[str, Any]]:
    return [{"index": i, "relevance_score": score} for i, score in ranked(scores, top_n)]


def _with_scores(documents: Sequence[Document], results: list[dict[str, Any]]) -> list[Document]:
    """Copies of the kept documents, each with its ``relevance_score`` in the metadata."""
    kept = []
    for result in results:
        doc = documents[result["index"]]
        metadata = {**doc.metadata, "relevance_score": result["relevance_score"]}
        kept.append(Document(page_content=doc.page_content, metadata=metadata, id=doc.id))
    return kept


__all__ = ["FuriosaRerank"]
