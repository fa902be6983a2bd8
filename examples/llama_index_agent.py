"""A LlamaIndex FunctionAgent calling Python tools, in-process on the default models.

    python examples/llama_index_agent.py
    python examples/llama_index_agent.py "What is 23 times 19?"

The engine constrains tool calls to the offered tools' JSON schemas, so even the 135M
default model emits well-formed calls with typed arguments. A model that small rarely
decides to call a tool on its own, so the agent's first turn is pinned to the
calculator with ``initial_tool_choice``; with a larger model, leave it unset and let
the model choose. The arguments and the final answer are always the model's (the
135M model tends to restate the tool's response rather than phrase an answer).
"""

from __future__ import annotations

import argparse
import asyncio
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llama_index.core.agent.workflow import (
    AgentStream,
    FunctionAgent,
    ToolCall,
    ToolCallResult,
)

from furiosa_integrations.llama_index import FuriosaLLM


def multiply(a: int, b: int) -> int:
    """Multiply two integers and return the product."""
    return a * b


def add(a: int, b: int) -> int:
    """Add two integers and return the sum."""
    return a + b


async def run(question: str) -> None:
    llm = FuriosaLLM(temperature=0.0, max_tokens=96)
    agent = FunctionAgent(
        tools=[multiply, add],
        llm=llm,
        system_prompt="You are a calculator assistant.",
        initial_tool_choice="multiply",
    )
    print(f"User: {question}")
    handler = agent.run(user_msg=question)
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            print(f"  -> {event.tool_name}({event.tool_kwargs}) = {event.tool_output.content}")
        elif isinstance(event, ToolCall):
            print(f"  calling {event.tool_name} with {event.tool_kwargs}")
        elif isinstance(event, AgentStream) and event.delta:
            pass  # token deltas; print(event.delta, end="") to watch them arrive
    response = await handler
    print(f"Agent: {response}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="What is 12 times 7?")
    asyncio.run(run(parser.parse_args().question))


if __name__ == "__main__":
    main()
