"""Scoring inputs: a query and its documents checked and encoded as the model's pairs.

    (query, documents) -> ScorePair per document: [CLS] query [SEP] document [SEP]

One query against many documents (1 -> N) or one query per document (N -> N), as vLLM's
and furiosa-llm's ``score`` take them. A pair longer than the model's limit is cut the
way sentence-transformers' ``CrossEncoder`` cuts it (the longer text first); with
``truncate_prompt_tokens=None`` it is an error instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ContextLengthExceededError, InvalidRequestError
from .protocol import ScorePair
from .sampling_params import PoolingParams
from .tokenizer import Tokenizer


def _texts(value: object, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidRequestError(f"{what} must be a list of strings, got {type(value).__name__}")
    texts = list(value)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequestError(f"{what}[{i}] must be a string, got {type(text).__name__}")
    return texts


def score_queries(query: object, documents: object) -> tuple[list[str], list[str]]:
    """The query of every pair and the documents, checked (1 -> N or N -> N)."""
    docs = _texts(documents, "documents")
    if not docs:
        raise InvalidRequestError("documents must not be empty")
    if isinstance(query, str):
        if not query.strip():
            raise InvalidRequestError("query must be a non-empty string")
        return [query] * len(docs), docs
    queries = _texts(query, "query")
    if len(queries) != len(docs):
        raise InvalidRequestError(
            f"Give one query, or one query per document: got {len(queries)} queries for "
            f"{len(docs)} documents"
        )
    return queries, docs


def prepare_pairs(
    tokenizer: Tokenizer,
    max_model_len: int,
    query: object,
    documents: object,
    params: PoolingParams,
) -> list[ScorePair]:
    """Checked, encoded pairs, or the typed error of the first thing wrong."""
    queries, docs = score_queries(query, documents)
    params.verify()
    limit = max_model_len
    if params.truncate_prompt_tokens not in (None, -1):
        limit = min(limit, int(params.truncate_prompt_tokens))  # type: ignore[arg-type]
    truncate = params.truncate_prompt_tokens is not None
    # Segments matter (BERT's second text is segment 1); transformers' generic fast
    # tokenizer leaves them out unless asked.
    encoded = tokenizer(
        queries,
        text_pair=docs,
        add_special_tokens=True,
        truncation=truncate,
        max_length=limit,
        return_token_type_ids=True,
    )
    types = encoded.get("token_type_ids")
    pairs = []
    for i, ids in enumerate(encoded["input_ids"]):
        if len(ids) > max_model_len:
            raise ContextLengthExceededError(
                max_model_len=max_model_len, prompt_tokens=len(ids), max_tokens=None
            )
        pair_types = list(types[i]) if types is not None else None
        pairs.append(ScorePair(queries[i], docs[i], list(ids), pair_types))
    return pairs


def ranked(scores: Sequence[float], top_n: int | None = None) -> list[tuple[int, float]]:
    """``(index, score)`` best first (ties keep their order), the first ``top_n`` of them."""
    order = sorted(enumerate(scores), key=lambda item: -item[1])
    return order if top_n is None else order[:top_n]


__all__ = ["prepare_pairs", "ranked", "score_queries"]
