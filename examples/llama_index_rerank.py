"""RAG with a reranker in LlamaIndex: a query engine with FuriosaRerank as its node
postprocessor.

    python examples/llama_index_rerank.py
    python examples/llama_index_rerank.py "How high is Mount Tevar?"
    python examples/llama_index_rerank.py --reranker path/to/cross-encoder "your question"

A VectorStoreIndex over the bundled documents (FuriosaEmbedding) retrieves the closest
nodes; FuriosaRerank rescores them against the question (node.score becomes the
cross-encoder's) and keeps the best; FuriosaLLM answers from them. Without --reranker a
random-weight demo cross-encoder stands in (see examples/demo_reranker.py). Offline.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from demo_reranker import reranker_path
from llama_index.core import VectorStoreIndex
from llama_index_rag import DOCUMENTS

from furiosa_integrations.llama_index import FuriosaEmbedding, FuriosaLLM, FuriosaRerank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="When is the Zorblax festival held?")
    parser.add_argument("--reranker", type=Path, help="a local cross-encoder directory")
    parser.add_argument("--fetch", type=int, default=3, help="nodes the retriever fetches")
    parser.add_argument("--top-n", type=int, default=2, help="nodes the reranker keeps")
    args = parser.parse_args()

    index = VectorStoreIndex.from_documents(DOCUMENTS, embed_model=FuriosaEmbedding())
    rerank = FuriosaRerank(model=str(reranker_path(args.reranker)), top_n=args.top_n)
    engine = index.as_query_engine(
        llm=FuriosaLLM(temperature=0, max_tokens=64),
        similarity_top_k=args.fetch,
        node_postprocessors=[rerank],
    )
    response = engine.query(args.question)
    print(f"Q: {args.question}\nA: {str(response).strip()}\n\nReranked sources:")
    for node in response.source_nodes:
        snippet = " ".join(node.node.get_content().split())[:70]
        print(f"  {node.score:.3f}  {node.node.metadata.get('file_name', '?')}: {snippet}...")


if __name__ == "__main__":
    main()
