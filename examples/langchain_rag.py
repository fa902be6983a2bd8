"""Retrieval-augmented generation with LangChain, in-process on the default models.

    python examples/langchain_rag.py
    python examples/langchain_rag.py "How long does the ferry crossing take?"
    python examples/langchain_rag.py --data path/to/txt/files "your question"

The text files in examples/data (a few made-up pages about an island, so a right answer
can only come from them) are split into chunks, embedded with FuriosaEmbeddings into an
InMemoryVectorStore, and an LCEL chain (retriever -> prompt -> FuriosaChat -> parser)
streams the answer, then lists the chunks it was given. Everything runs offline.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter

from furiosa_integrations import FuriosaChat, FuriosaEmbeddings

DATA = Path(__file__).parent / "data"

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer the question using only this context:\n\n{context}"),
        ("human", "{question}"),
    ]
)


def load(directory: Path) -> list[Document]:
    return [
        Document(page_content=path.read_text(encoding="utf-8"), metadata={"source": path.name})
        for path in sorted(directory.glob("*.txt"))
    ]


def join(documents: list[Document]) -> str:
    return "\n\n".join(document.page_content for document in documents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "question", nargs="?", default="Who is the keeper of the Saltmarsh Lighthouse?"
    )
    parser.add_argument("--data", type=Path, default=DATA, help="a directory of .txt files")
    parser.add_argument("--top-k", type=int, default=2, help="chunks to retrieve")
    args = parser.parse_args()

    start = time.perf_counter()
    documents = load(args.data)
    chunks = RecursiveCharacterTextSplitter(chunk_size=300, chunk_overlap=0).split_documents(
        documents
    )
    store = InMemoryVectorStore.from_documents(chunks, FuriosaEmbeddings())
    retriever = store.as_retriever(search_kwargs={"k": args.top_k})
    print(
        f"Indexed {len(chunks)} chunks of {len(documents)} documents "
        f"in {time.perf_counter() - start:.2f}s\n"
    )

    # The 135M default model tends to restate its answer; one paragraph is the answer.
    llm = FuriosaChat(temperature=0, max_tokens=96, stop=["\n\n"])
    answer = PROMPT | llm | StrOutputParser()
    chain = RunnableParallel(context=retriever, question=RunnablePassthrough()).assign(
        answer=(lambda x: {"context": join(x["context"]), "question": x["question"]}) | answer
    )

    print(f"Q: {args.question}\nA: ", end="", flush=True)
    sources: list[Document] = []
    for piece in chain.stream(args.question):
        if "context" in piece:
            sources = piece["context"]
        if "answer" in piece:
            print(piece["answer"], end="", flush=True)
    print("\n\nSources:")
    for document in sources:
        snippet = " ".join(document.page_content.split())[:90]
        print(f"  {document.metadata['source']}: {snippet}...")


if __name__ == "__main__":
    main()
