"""Real LangChain pipelines on the default models: an LCEL RAG chain and a LangGraph agent."""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter
from langgraph.prebuilt import create_react_agent

from furiosa_integrations.engine import AsyncEngine
from furiosa_integrations.langchain import FuriosaChat, FuriosaEmbeddings

# Made-up facts, so a right answer can only come from the retrieved text.
DOCUMENTS = [
    Document(
        page_content=(
            "The Saltmarsh Lighthouse stands on the northern cliff of Varrow Island. It was "
            "built in 1874 from grey granite and is 31 meters tall.\n\n"
            "The current keeper of the Saltmarsh Lighthouse is Maren Holt. She has lived in "
            "the keeper's cottage since 2009."
        ),
        metadata={"source": "lighthouse.txt"},
    ),
    Document(
        page_content=(
            "The ferry Gull Wing connects Varrow Island with the mainland town of Brenport. "
            "The crossing takes 55 minutes.\n\n"
            "Bicycles travel free of charge. Cars must be booked two days in advance."
        ),
        metadata={"source": "ferry.txt"},
    ),
    Document(
        page_content=(
            "The only bakery on Varrow Island is run by the brothers Tomas and Eli Brandt. "
            "It opens at 6:30 every morning except Monday.\n\n"
            "Its best-known bread is the sea-salt loaf."
        ),
        metadata={"source": "bakery.txt"},
    ),
]

RAG_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer the question using only this context:\n\n{context}"),
        ("human", "{question}"),
    ]
)


def _join(documents: list[Document]) -> str:
    return "\n\n".join(document.page_content for document in documents)


def test_lcel_rag_chain_answers_from_the_retrieved_chunk(
    chat_engine: AsyncEngine, embed_engine: AsyncEngine
) -> None:
    splitter = RecursiveCharacterTextSplitter(chunk_size=160, chunk_overlap=0)
    chunks = splitter.split_documents(DOCUMENTS)
    assert len(chunks) > len(DOCUMENTS)  # the splitter really split
    store = InMemoryVectorStore.from_documents(chunks, FuriosaEmbeddings())
    retriever = store.as_retriever(search_kwargs={"k": 1})
    llm = FuriosaChat(temperature=0, max_tokens=32)
    answer_chain = RAG_PROMPT | llm | StrOutputParser()
    chain = RunnableParallel(context=retriever, question=RunnablePassthrough()).assign(
        answer=(lambda x: {"context": _join(x["context"]), "question": x["question"]})
        | answer_chain
    )

    result = chain.invoke("Who is the keeper of the Saltmarsh Lighthouse?")
    [retrieved] = result["context"]
    assert retrieved.metadata["source"] == "lighthouse.txt"
    assert "Maren Holt" in retrieved.page_content
    assert "Maren Holt" in result["answer"]

    # The same chain, streamed: the bakery question retrieves the bakery chunk.
    pieces = list(chain.stream("Who runs the bakery on Varrow Island?"))
    answer = "".join(p["answer"] for p in pieces if "answer" in p)
    [retrieved] = next(p["context"] for p in pieces if "context" in p)
    assert retrieved.metadata["source"] == "bakery.txt"
    assert "Tomas" in answer and "Eli" in answer


async def test_lcel_rag_chain_async(chat_engine: AsyncEngine, embed_engine: AsyncEngine) -> None:
    store = await InMemoryVectorStore.afrom_documents(DOCUMENTS, FuriosaEmbeddings())
    retriever = store.as_retriever(search_kwargs={"k": 1})
    chain = (
        {"context": retriever | _join, "question": RunnablePassthrough()}
        | RAG_PROMPT
        | FuriosaChat(temperature=0, max_tokens=32)
        | StrOutputParser()
    )
    answer = await chain.ainvoke("How long does the ferry crossing take?")
    assert "55 minutes" in answer


def test_langgraph_react_agent_calls_the_tool_and_uses_its_result(
    chat_engine: AsyncEngine,
) -> None:
    calls: list[str] = []

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        calls.append(city)
        return f"It is 23 degrees and foggy in {city}."

    @tool
    def get_population(city: str) -> int:
        """Get the number of people living in a city."""
        calls.append(city)
        return 2_100_000

    # The tiny model never picks a tool on its own; the option requires a call on the
    # user's turn and lets it answer freely once the tool result is in.
    llm = FuriosaChat(
        temperature=0,
        max_tokens=48,
        parallel_tool_calls=False,
        force_tool_call_on_user_turn=True,
    )
    agent = create_react_agent(llm, [get_weather, get_population])
    state = agent.invoke(
        {"messages": [HumanMessage("What is the weather like in Paris today?")]},
        {"recursion_limit": 6},
    )
    messages = state["messages"]
    call_message = messages[1]
    assert isinstance(call_message, AIMessage)
    assert [(c["name"], c["args"]) for c in call_message.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert calls == ["Paris"]
    assert isinstance(messages[2], ToolMessage)
    answer = messages[-1]
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    assert "foggy" in str(answer.content) or "23" in str(answer.content)
