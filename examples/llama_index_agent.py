"""A LlamaIndex FunctionAgent calling Python tools, in-process on the default models.

    python examples/llama_index_agent.py
    python examples/llama_index_agent.py "What is 23 times 19?"

The engine constrains tool calls to the offered tools' JSON schemas, so even the 135M
default model emits well-formed calls with typed arguments. A model that small rarely
decides to call a tool on its own, so FuriosaLLM requires a call on the user's turn by
default (``force_tool_call_on_user_turn``, on for models whose chat template renders no
tools) and lets the model answer once the tool result is in. Which tool, the arguments
and the final answer are the model's.
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
        tools=[multiply, add], llm=llm, system_prompt="You are a calculator assistant."
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
