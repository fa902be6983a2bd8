"""LlamaIndex's FuriosaLLM / FuriosaEmbedding with ``base_url``: a FunctionAgent calling a
tool (its tool call constrained and parsed by our engine, not the server's parsers),
``structured_predict``, metadata from the server, and RAG over served embeddings."""

from __future__ import annotations

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from furiosa_integrations.llama_index import FuriosaEmbedding, FuriosaLLM

from .servers import FuriosaServer

pytestmark = pytest.mark.models


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture
def llm(furiosa_server: FuriosaServer) -> FuriosaLLM:
    return FuriosaLLM(base_url=furiosa_server.base_url, temperature=0.0, max_tokens=48)


def test_metadata_comes_from_the_server(llm: FuriosaLLM) -> None:
    meta = llm.metadata
    assert meta.is_function_calling_model and meta.is_chat_model
    assert meta.context_window == 8192  # /v1/models, not a 3,900-token guess
    assert meta.model_name == "stand-in"


async def test_function_agent_calls_a_tool_and_uses_its_result(llm: FuriosaLLM) -> None:
    calls: list[tuple[int, int]] = []

    def multiply(a: int, b: int) -> int:
        """Multiply two integers and return the product."""
        calls.append((a, b))
        return a * b

    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(multiply)],
        llm=llm,
        system_prompt="You are a calculator assistant.",
        initial_tool_choice="multiply",
    )
    handler = agent.run(user_msg="What is 12 times 7?")
    results = [ev async for ev in handler.stream_events() if isinstance(ev, ToolCallResult)]
    response = await handler
    assert calls == [(12, 7)]
    assert [(r.tool_name, r.tool_kwargs) for r in results] == [("multiply", {"a": 12, "b": 7})]
    assert "84" in str(response)


async def test_structured_predict(llm: FuriosaLLM) -> None:
    prompt = PromptTemplate("Extract the person from this text: {text}")
    text = "Alice is 30 years old and lives in Paris."
    assert llm.structured_predict(Person, prompt, text=text) == Person(name="Alice", age=30)
    assert await llm.astructured_predict(Person, prompt, text=text) == Person(name="Alice", age=30)


def test_rag_over_served_embeddings(llm: FuriosaLLM, furiosa_embed_server: FuriosaServer) -> None:
    documents = [
        Document(text="The Zorblax festival is held every year in the town of Quillon."),
        Document(text="Mount Tevar is the tallest mountain in the Orlin range."),
    ]
    embed = FuriosaEmbedding(base_url=furiosa_embed_server.base_url)
    index = VectorStoreIndex.from_documents(documents, embed_model=embed)
    response = index.as_query_engine(llm=llm, similarity_top_k=1).query(
        "In which town is the Zorblax festival held?"
    )
    assert "Quillon" in str(response)
