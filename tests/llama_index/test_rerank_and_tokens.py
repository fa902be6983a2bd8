"""LlamaIndex: ``FuriosaRerank`` as a query engine's node postprocessor, the model's own
tokenizer as ``Settings.tokenizer`` / memory / splitter counter, image blocks in every
form, and ``metadata`` read off the engine."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from furiosa_integrations.core.text.chat import image_parts
from furiosa_integrations.core.text.images import load_image
from furiosa_integrations.engine import AsyncEngine, UnsupportedInputError
from furiosa_integrations.llama_index import (
    FuriosaEmbedding,
    FuriosaLLM,
    FuriosaRerank,
    FuriosaTokenizer,
)
from furiosa_integrations.llama_index.messages import to_engine_messages
from tests.langchain.test_pipelines import DOCUMENTS

QUESTION = "How long does the ferry crossing take?"


def _expected(model: Path, query: str, texts: list[str]) -> list[float]:
    from sentence_transformers import CrossEncoder

    return [float(s) for s in CrossEncoder(str(model), device="cpu").predict(
        [(query, t) for t in texts]
    )]  # fmt: skip


def test_query_engine_with_the_reranker(
    llm: FuriosaLLM, embed_model: FuriosaEmbedding, cross_encoder_dir: Path
) -> None:
    documents = [Document(text=d.page_content, metadata=d.metadata) for d in DOCUMENTS]
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
    rerank = FuriosaRerank(model=str(cross_encoder_dir), top_n=2, dtype="float32")
    engine = index.as_query_engine(llm=llm, similarity_top_k=3, node_postprocessors=[rerank])
    response = engine.query(QUESTION)
    assert str(response).strip() and len(response.source_nodes) == 2
    # What SentenceTransformerRerank scores too: the text with its embedding metadata.
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in response.source_nodes]
    expected = _expected(cross_encoder_dir, QUESTION, texts)
    assert [n.score for n in response.source_nodes] == pytest.approx(expected, abs=1e-5)
    assert expected == sorted(expected, reverse=True)


async def test_postprocessor_async_and_retrieval_score(cross_encoder_dir: Path) -> None:
    rerank = FuriosaRerank(
        model=str(cross_encoder_dir), top_n=3, keep_retrieval_score=True, dtype="float32"
    )
    nodes = [NodeWithScore(node=TextNode(text=d.page_content), score=0.5) for d in DOCUMENTS]
    kept = await rerank.apostprocess_nodes(nodes, QueryBundle(QUESTION))
    expected = sorted(_expected(cross_encoder_dir, QUESTION, [d.page_content for d in DOCUMENTS]))
    assert [n.score for n in kept] == pytest.approx(expected[::-1], abs=1e-5)
    assert all(n.node.metadata["retrieval_score"] == 0.5 for n in kept)
    assert rerank.postprocess_nodes([], QueryBundle(QUESTION)) == []
    with pytest.raises(ValueError, match="query bundle"):
        rerank.postprocess_nodes(nodes)


def test_model_tokenizer_counts_for_llama_index(
    llm: FuriosaLLM, embed_model: FuriosaEmbedding, chat_engine: AsyncEngine
) -> None:
    tokenizer = FuriosaTokenizer(llm)
    text = "The ferry Gull Wing connects Varrow Island with Brenport."
    assert tokenizer(text) == chat_engine.tokenize(text) == tokenizer.encode(text)
    previous = Settings._tokenizer
    try:
        Settings.tokenizer = tokenizer
        assert Settings.tokenizer(text) == chat_engine.tokenize(text)
    finally:
        Settings._tokenizer = previous
    # Memory counts the model's tokens: a limit of 40 of them keeps only the last turns.
    memory = ChatMemoryBuffer.from_defaults(token_limit=40, tokenizer_fn=tokenizer)
    for i in range(6):
        memory.put(ChatMessage(role="user", content=f"Message number {i} about the ferry."))
    kept = memory.get()
    assert 0 < len(kept) < 6
    assert sum(len(tokenizer(str(m.content))) for m in kept) <= 40
    # Splitters size chunks in the embedding model's tokens (its 256-token window).
    splitter = SentenceSplitter(
        chunk_size=32, chunk_overlap=0, tokenizer=FuriosaTokenizer(embed_model)
    )
    chunks = splitter.split_text(" ".join(d.page_content for d in DOCUMENTS))
    assert len(chunks) > 2 and all(len(embed_model.engine.tokenize(c)) <= 32 for c in chunks)  # type: ignore[union-attr]


def test_metadata_is_exact(llm: FuriosaLLM, chat_engine: AsyncEngine) -> None:
    meta = llm.metadata
    assert meta.context_window == chat_engine.max_model_len
    assert meta.num_output == llm.max_tokens and meta.model_name == chat_engine.model_name
    assert meta.is_chat_model and meta.is_function_calling_model


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (10, 200, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def _image_blocks(path: Path) -> list[ImageBlock]:
    png = _png()
    return [
        ImageBlock(image=png),
        ImageBlock(image=io.BytesIO(png)),
        ImageBlock(path=path),
        ImageBlock(url="data:image/png;base64," + base64.b64encode(png).decode()),
        ImageBlock(url=path.as_uri()),
    ]


def test_image_blocks_in_every_form(llm: FuriosaLLM, tmp_path: Path) -> None:
    path = tmp_path / "green.png"
    path.write_bytes(_png())
    for block in _image_blocks(path):
        message = ChatMessage(role="user", blocks=[TextBlock(text="What is this?"), block])
        (part,) = image_parts(to_engine_messages([message]))
        image = load_image(part)
        assert image.size == (3, 2) and image.convert("RGB").getpixel((0, 0)) == (10, 200, 10)
        with pytest.raises(UnsupportedInputError, match="text-only"):
            llm.chat([message])
