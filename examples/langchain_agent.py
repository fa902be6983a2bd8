"""A LangGraph ReAct agent on FuriosaChat, in-process on the default model.

    python examples/langchain_agent.py
    python examples/langchain_agent.py "When does the ferry leave Brenport?"

The agent (langgraph's create_react_agent) may call two tools. Each tool call is decoded
under a constraint, so its arguments always match the tool's schema, even on the 135M
default model. That model never decides to call a tool by itself, so FuriosaChat requires
a call on the user's turn by default (``force_tool_call_on_user_turn``, on for models whose
chat template renders no tools), and the model answers freely once the tool result is in.
Everything runs offline.
"""

from __future__ import annotations

import argparse
import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent

from furiosa_integrations import FuriosaChat

# LangGraph 1.x suggests langchain.agents.create_agent; create_react_agent still works.
warnings.filterwarnings("ignore", message="create_react_agent has been moved")

WEATHER = {"paris": "18 degrees and cloudy", "brenport": "12 degrees, wind from the west"}
FERRIES = {"brenport": ["8:00", "12:30", "17:00"], "varrow island": ["9:00", "13:30", "18:00"]}


@tool
def weather(city: str) -> str:
    """Get the weather forecast for a city."""
    return f"The weather in {city} is {WEATHER.get(city.lower(), '20 degrees and sunny')}."


@tool
def ferry_times(port: str) -> str:
    """Get the ferry timetable for a port."""
    times = FERRIES.get(port.lower())
    if times is None:
        return f"There is no ferry from {port}."
    return f"Ferries leave {port} at {', '.join(times)}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="What is the weather in Paris?")
    args = parser.parse_args()

    llm = FuriosaChat(temperature=0, max_tokens=64)
    agent = create_react_agent(llm, [weather, ferry_times])
    state = agent.invoke({"messages": [HumanMessage(args.question)]}, {"recursion_limit": 6})
    for message in state["messages"]:
        if isinstance(message, HumanMessage):
            print(f"user:  {message.content}")
        elif isinstance(message, AIMessage) and message.tool_calls:
            for call in message.tool_calls:
                print(f"call:  {call['name']}({call['args']})")
        elif isinstance(message, ToolMessage):
            print(f"tool:  {message.content}")
        elif isinstance(message, AIMessage):
            print(f"agent: {message.content}")


if __name__ == "__main__":
    main()
