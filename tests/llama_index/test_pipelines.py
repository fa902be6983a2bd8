"""Real LlamaIndex pipelines on the default models: RAG (query engine, streaming, async),
a context chat engine over two turns, a FunctionAgent and a ReActAgent using tools.

LLM and embedding model are passed explicitly; the conftest guards fail any test that
falls back to LlamaIndex's default (OpenAI) models or opens a network connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import AgentOutput, FunctionAgent, ReActAgent, ToolCallResult
from llama_index.core.base.response.schema import StreamingResponse
from llama_index.core.chat_engine.types import ChatMode
from llama_index.core.tools import BaseTool, FunctionTool

from furiosa_integrations.engine import StructuredOutputsParams
from furiosa_integrations.llama_index import FuriosaEmbedding, FuriosaLLM

pytestmark = pytest.mark.models  # every test here loads a model

AgentTools = list[BaseTool | Callable[..., Any]]  # the agents' ``tools`` (a list: invariant)

DOCUMENTS = [
    Document(
        text="The Zorblax festival is held every year in the town of Quillon, on the 14th of "
        "March. Visitors eat blue pancakes.",
        metadata={"source": "festival.txt"},
    ),
    Document(
        text="Mount Tevar is the tallest mountain in the Orlin range. It is 5,210 meters high "
        "and was first climbed in 1931.",
        metadata={"source": "mountain.txt"},
    ),
    Document(
        text="The Veltro river flows through the city of Amberg and ends in Lake Silva. Its "
        "water is famously green.",
        metadata={"source": "river.txt"},
    ),
    Document(
        text="Captain Irena Lusk commands the research ship Nautilon, which studies deep-sea "
        "squid in the Arctic.",
        metadata={"source": "ship.txt"},
    ),
]


@pytest.fixture(scope="module")
def index(embed_model: FuriosaEmbedding) -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(DOCUMENTS, embed_model=embed_model)


def test_query_engine_retrieves_the_right_node_and_answers_from_it(
    index: VectorStoreIndex, llm: FuriosaLLM
) -> None:
    engine = index.as_query_engine(llm=llm, similarity_top_k=1)
    response = engine.query("In which town is the Zorblax festival held?")
    assert response.source_nodes[0].node.metadata["source"] == "festival.txt"
    assert "Quillon" in str(response)  # a made-up town: only the retrieved node knows it


def test_streaming_query_engine(index: VectorStoreIndex, llm: FuriosaLLM) -> None:
    engine = index.as_query_engine(llm=llm, similarity_top_k=1, streaming=True)
    response = engine.query("How high is Mount Tevar?")
    assert isinstance(response, StreamingResponse)
    assert response.source_nodes[0].node.metadata["source"] == "mountain.txt"
    tokens = list(response.response_gen)
    assert len(tokens) > 3
    assert "5,210" in "".join(tokens)


async def test_async_query_engine(index: VectorStoreIndex, llm: FuriosaLLM) -> None:
    engine = index.as_query_engine(llm=llm, similarity_top_k=1)
    response = await engine.aquery("Where does the Veltro river end?")
    assert response.source_nodes[0].node.metadata["source"] == "river.txt"
    assert "Lake Silva" in str(response)


def test_context_chat_engine_over_two_turns(index: VectorStoreIndex, llm: FuriosaLLM) -> None:
    chat = index.as_chat_engine(chat_mode=ChatMode.CONTEXT, llm=llm, similarity_top_k=1)
    first = chat.chat("In which town is the Zorblax festival held?")
    assert "Quillon" in str(first)
    second = chat.chat("On what date is the festival held?")
    assert "14th of March" in str(second)
    assert second.source_nodes[0].node.metadata["source"] == "festival.txt"
    history = chat.chat_history
    assert [m.role.value for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[1].content == str(first)


def _arithmetic_tools(calls: list[tuple[str, int, int]], return_direct: bool) -> list[FunctionTool]:
    def add(a: int, b: int) -> int:
        """Add two integers and return the sum."""
        calls.append(("add", a, b))
        return a + b

    def multiply(a: int, b: int) -> int:
        """Multiply two integers and return the product."""
        calls.append(("multiply", a, b))
        return a * b

    return [
        FunctionTool.from_defaults(add, return_direct=return_direct),
        FunctionTool.from_defaults(multiply, return_direct=return_direct),
    ]


async def test_function_agent_calls_a_tool_and_uses_its_result(llm: FuriosaLLM) -> None:
    calls: list[tuple[str, int, int]] = []
    agent = FunctionAgent(
        tools=cast(AgentTools, _arithmetic_tools(calls, return_direct=False)),
        llm=llm,
        system_prompt="You are a calculator assistant.",
        # The first turn must call multiply (a constrained, named tool call); the
        # arguments, and the answer after the tool result, are the model's.
        initial_tool_choice="multiply",
    )
    handler = agent.run(user_msg="What is 12 times 7?")
    results = [ev async for ev in handler.stream_events() if isinstance(ev, ToolCallResult)]
    response = await handler
    assert calls == [("multiply", 12, 7)]
    assert [(r.tool_name, r.tool_kwargs) for r in results] == [("multiply", {"a": 12, "b": 7})]
    assert "84" in str(response)  # the tool's result, carried into the final answer


def _react_grammar(tool_names: list[str]) -> str:
    """EBNF keeping a small model in ReAct's format: a thought, then one of the offered
    tools with integer arguments. Which tool and which numbers is the model's choice."""
    names = " | ".join(f'"{name}"' for name in tool_names)
    return (
        'root ::= "Thought: " [^\\n]+ "\\nAction: " tool "\\nAction Input: {\\"a\\": " int '
        '", \\"b\\": " int "}"\n'
        f"tool ::= {names}\n"
        'int ::= "-"? [0-9]+\n'
    )


async def test_react_agent_completes_a_tool_using_task() -> None:
    calls: list[tuple[str, int, int]] = []
    # return_direct: the tool's output is the answer, so every LLM turn is an action and
    # one grammar fits all of them.
    tools = _arithmetic_tools(calls, return_direct=True)
    grammar = _react_grammar([t.metadata.get_name() for t in tools])
    react_llm = FuriosaLLM(
        temperature=0.0, max_tokens=96, structured_outputs=StructuredOutputsParams(grammar=grammar)
    )
    agent = ReActAgent(tools=cast(AgentTools, tools), llm=react_llm)
    response: AgentOutput = await agent.run(user_msg="What is 12 times 7?")
    assert calls == [("multiply", 12, 7)]
    assert str(response) == "84"
    assert [r.tool_name for r in response.tool_calls] == ["multiply"]
