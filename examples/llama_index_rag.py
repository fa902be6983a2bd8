"""Retrieval-augmented generation with LlamaIndex, in-process on the default models.

    python examples/llama_index_rag.py
    python examples/llama_index_rag.py "How high is Mount Tevar?"
    python examples/llama_index_rag.py --data path/to/docs "your question"

A VectorStoreIndex over a few documents (bundled below, or the text files of ``--data``)
is embedded with FuriosaEmbedding; a streaming query engine retrieves the closest
chunk and FuriosaLLM answers from it. Everything runs offline: the LLM and embedding
model are passed explicitly, so LlamaIndex never reaches for its OpenAI defaults.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llama_index.core import Document, SimpleDirectoryReader, VectorStoreIndex

from furiosa_integrations.llama_index import FuriosaEmbedding, FuriosaLLM

# Made-up facts, so a right answer can only come from the retrieved document.
DOCUMENTS = [
    Document(
        text="The Zorblax festival is held every year in the town of Quillon, on the 14th of "
        "March. Visitors eat blue pancakes.",
        metadata={"file_name": "festival.txt"},
    ),
    Document(
        text="Mount Tevar is the tallest mountain in the Orlin range. It is 5,210 meters high "
        "and was first climbed in 1931.",
        metadata={"file_name": "mountain.txt"},
    ),
    Document(
        text="The Veltro river flows through the city of Amberg and ends in Lake Silva. Its "
        "water is famously green.",
        metadata={"file_name": "river.txt"},
    ),
    Document(
        text="Captain Irena Lusk commands the research ship Nautilon, which studies deep-sea "
        "squid in the Arctic.",
        metadata={"file_name": "ship.txt"},
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "question", nargs="?", default="In which town is the Zorblax festival held?"
    )
    parser.add_argument("--data", help="a directory of text files to index instead")
    parser.add_argument("--top-k", type=int, default=1, help="chunks to retrieve")
    args = parser.parse_args()

    documents = SimpleDirectoryReader(args.data).load_data() if args.data else DOCUMENTS
    llm = FuriosaLLM(temperature=0.0, max_tokens=96)
    embed_model = FuriosaEmbedding()

    start = time.perf_counter()
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
    print(f"Indexed {len(documents)} documents in {time.perf_counter() - start:.2f}s\n")

    query_engine = index.as_query_engine(llm=llm, similarity_top_k=args.top_k, streaming=True)
    print(f"Q: {args.question}\nA: ", end="", flush=True)
    response = query_engine.query(args.question)
    for token in response.response_gen:
        print(token, end="", flush=True)
    print("\n\nSources:")
    for node in response.source_nodes:
        name = node.node.metadata.get("file_name", node.node.node_id)
        print(f"  [{node.score:.3f}] {name}: {node.node.get_content()[:80]}...")


if __name__ == "__main__":
    main()
