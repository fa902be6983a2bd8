"""RAG with a reranker in LangChain: ContextualCompressionRetriever(FuriosaRerank).

    python examples/langchain_rerank.py
    python examples/langchain_rerank.py "How long does the ferry crossing take?"
    python examples/langchain_rerank.py --reranker path/to/cross-encoder "your question"

The text files in examples/data are split and embedded with FuriosaEmbeddings; the
retriever fetches the closest chunks, FuriosaRerank (a cross-encoder on the same engine
stack) rescores them against the question and keeps the best, and FuriosaChat answers
from those. Without --reranker a random-weight demo cross-encoder stands in (see
examples/demo_reranker.py). Everything runs offline.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from demo_reranker import reranker_path
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_rag import DATA, PROMPT, join, load
from langchain_text_splitters import RecursiveCharacterTextSplitter

from furiosa_integrations import FuriosaChat, FuriosaEmbeddings, FuriosaRerank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="How long does the ferry crossing take?")
    parser.add_argument("--data", type=Path, default=DATA, help="a directory of .txt files")
    parser.add_argument("--reranker", type=Path, help="a local cross-encoder directory")
    parser.add_argument("--fetch", type=int, default=4, help="chunks the retriever fetches")
    parser.add_argument("--top-n", type=int, default=2, help="chunks the reranker keeps")
    args = parser.parse_args()

    chunks = RecursiveCharacterTextSplitter(chunk_size=300, chunk_overlap=0).split_documents(
        load(args.data)
    )
    store = InMemoryVectorStore.from_documents(chunks, FuriosaEmbeddings())
    reranker = FuriosaRerank(model=str(reranker_path(args.reranker)), top_n=args.top_n)
    retriever = ContextualCompressionRetriever(
        base_compressor=reranker,
        base_retriever=store.as_retriever(search_kwargs={"k": args.fetch}),
    )
    llm = FuriosaChat(temperature=0, max_tokens=96, stop=["\n\n"])
    chain = RunnableParallel(context=retriever, question=RunnablePassthrough()).assign(
        answer=(lambda x: {"context": join(x["context"]), "question": x["question"]})
        | PROMPT
        | llm
        | StrOutputParser()
    )
    result = chain.invoke(args.question)
    print(f"Q: {args.question}\nA: {result['answer'].strip()}\n\nReranked sources:")
    for document in result["context"]:
        snippet = " ".join(document.page_content.split())[:70]
        score = document.metadata["relevance_score"]
        print(f"  {score:.3f}  {document.metadata['source']}: {snippet}...")


if __name__ == "__main__":
    main()
