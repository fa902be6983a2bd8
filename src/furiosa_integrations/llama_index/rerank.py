"""``FuriosaRerank``: a LlamaIndex node postprocessor that reranks with a cross-encoder.

Pass it where LlamaIndex takes ``node_postprocessors`` (``index.as_query_engine(...)``):
the retrieved nodes are scored against the query by the engine (one batched call;
concurrent queries share forward passes), ``node.score`` becomes the cross-encoder's
score and the ``top_n`` best are kept, as ``SentenceTransformerRerank`` does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from ..adapter_fields import EngineChoice, RefusesUnknownArguments
from ..core import PoolingParams, Task, ranked


class FuriosaRerank(RefusesUnknownArguments, BaseNodePostprocessor, EngineChoice):
    """Rerank nodes with a cross-encoder served in-process (RNGD, or torch elsewhere).

    ``model`` is a local cross-encoder directory (a one-label
    ``*ForSequenceClassification`` checkpoint, as sentence-transformers' ``CrossEncoder``
    saves it); no reranker is bundled. The engine loads at construction.

    .. code-block:: python

        from furiosa_integrations.llama_index import FuriosaRerank

        rerank = FuriosaRerank(model="/models/ms-marco-MiniLM-L6-v2", top_n=2)
        engine = index.as_query_engine(similarity_top_k=10, node_postprocessors=[rerank])
    """

    _task: ClassVar[Task] = "score"

    top_n: int = Field(default=2, ge=1, description="Number of nodes to return sorted by score.")
    keep_retrieval_score: bool = Field(
        default=False,
        description="Keep the retrieval score in metadata['retrieval_score'].",
    )
    truncate_prompt_tokens: int | None = Field(
        default=-1,
        description="Cut a longer query-node pair (-1: to the model's limit; None: an error).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._get_engine()

    @classmethod
    def class_name(cls) -> str:
        return "FuriosaRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query, texts = self._inputs(nodes, query_bundle)
        if not texts:
            return []
        with self._event(nodes, query) as event:
            scores = self._get_engine().score_sync(query, texts, self._params())
            kept = self._rescored(nodes, scores)
            event.on_end(payload={EventPayload.NODES: kept})
        return kept

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query, texts = self._inputs(nodes, query_bundle)
        if not texts:
            return []
        with self._event(nodes, query) as event:
            scores = await self._get_engine().score(query, texts, self._params())
            kept = self._rescored(nodes, scores)
            event.on_end(payload={EventPayload.NODES: kept})
        return kept

    def _params(self) -> PoolingParams:
        return PoolingParams(truncate_prompt_tokens=self.truncate_prompt_tokens)

    @staticmethod
    def _inputs(
        nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> tuple[str, list[str]]:
        if query_bundle is None:
            raise ValueError("Missing query bundle in extra info.")
        texts = [node.node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes]
        return query_bundle.query_str, texts

    def _event(self, nodes: list[NodeWithScore], query: str) -> Any:
        return self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self._model_label(),
                EventPayload.QUERY_STR: query,
                EventPayload.TOP_K: self.top_n,
            },
        )

    def _rescored(self, nodes: list[NodeWithScore], scores: list[float]) -> list[NodeWithScore]:
        kept = []
        for index, score in ranked(scores, self.top_n):
            node = nodes[index]
            if self.keep_retrieval_score:
                node.node.metadata["retrieval_score"] = node.score
            node.score = score
            kept.append(node)
        return kept


__all__ = ["FuriosaRerank"]
