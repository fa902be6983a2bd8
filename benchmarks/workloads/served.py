"""(j) Served fleets: FuriosaChat(base_url=...) against ChatOpenAI(base_url=...) on the same
server and workload.

The server is furiosa-llm 2026.4's real server code over the stand-in native engine (our
torch engine behind furiosa-llm's native protocol; ``.venv-furiosa``), and vLLM on CPU too
when ``.venv-vllm`` exists. Each is started with ``--enable-auto-tool-choice
--tool-call-parser hermes``, so ChatOpenAI's ``tool_choice="auto"`` gets an answer rather
than a 400.

- chat: N concurrent chats x T tokens, greedy, EOS ignored on both sides (equal work);
  throughput, target within 5% of ChatOpenAI (ratio >= 0.95).
- tools: N concurrent "weather in <city>?" turns with one tool bound, ``tool_choice="auto"``;
  the share of replies that are a valid call (the offered tool, arguments that validate
  against its schema) and requests/s. Ours runs with ``force_tool_call_on_user_turn`` (the
  135M model never calls a tool on its own; the call itself is constrained by our engine);
  ChatOpenAI relies on the server's parser. Target: 100% valid calls for ours.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare
from ..servers import IGNORE_EOS, run_chats, served_name, serving, vllm_available, vllm_server

OURS = "FuriosaChat(base_url)"
PEER = "ChatOpenAI(base_url)"
CITIES = ("Oslo", "Paris", "Lima", "Cairo", "Quito", "Hanoi", "Bern", "Accra")
TOOL_FLAGS = ("--enable-auto-tool-choice", "--tool-call-parser", "hermes")


def _weather_tool() -> Any:
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return f"It is sunny in {city}."

    return get_weather


def _questions(n: int) -> list[str]:
    return [f"What is the weather in {CITIES[i % len(CITIES)]} right now? (#{i})" for i in range(n)]


def _valid_calls(messages: list[Any], schema: dict[str, Any]) -> float:
    """How many replies are one or more calls of the offered tool with valid arguments."""
    import jsonschema

    valid = 0
    for message in messages:
        calls = getattr(message, "tool_calls", None) or []
        ok = bool(calls)
        for call in calls:
            try:
                ok = ok and call["name"] == "get_weather"
                jsonschema.validate(call["args"], schema)
            except jsonschema.ValidationError:
                ok = False
        valid += ok
    return float(valid)


def _runner(chat: Any, ignore_eos: dict[str, Any]) -> Runner:
    """``ignore_eos``: the call options that make each chat exactly T tokens long."""
    tool = _weather_tool()
    schema = tool.args_schema.model_json_schema()
    # One loop for the worker's life: ChatOpenAI's async client stays bound to the first.
    loop = asyncio.new_event_loop()

    def run(case: dict[str, Any]) -> dict[str, float]:
        n, tokens = case["n"], case["tokens"]
        if case["kind"] == "chat":
            run_chats(chat, loop, case, ignore_eos)
            return {}
        bound = chat.bind_tools([tool], tool_choice="auto", parallel_tool_calls=False)
        bound = bound.bind(max_tokens=tokens)
        replies = loop.run_until_complete(bound.abatch(_questions(n), return_exceptions=True))
        valid = _valid_calls([r for r in replies if not isinstance(r, BaseException)], schema)
        errors = sum(isinstance(r, BaseException) for r in replies)
        return {"valid_share": valid / n, "errors": float(errors)}

    return run


def ours(base_url: str) -> Runner:
    from furiosa_integrations import FuriosaChat

    chat = FuriosaChat(base_url=base_url, temperature=0, force_tool_call_on_user_turn=True)
    return _runner(chat, {"ignore_eos": True})


def chat_openai(base_url: str, model: str) -> Runner:
    from ..servers import chat_openai as build

    # ignore_eos is vLLM's and furiosa-llm's own request field: equal work on both sides.
    return _runner(build(base_url, model), IGNORE_EOS)


def _servers(logs: Path) -> list[Any]:
    from tests.backends.remote.servers import FuriosaServer

    servers: list[Any] = [FuriosaServer("furiosa-llm", logs, extra=TOOL_FLAGS)]
    if vllm_available():
        servers.append(vllm_server(logs, extra=TOOL_FLAGS))
    return servers


def run(settings: Settings) -> list[Row]:
    n, tokens = (8, 32) if settings.quick else (16, 64)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-served-") as logs:
        for server in _servers(Path(logs)):
            with serving(server):
                rows += _compare(server, n, tokens, settings)
    return rows


def _compare(server: Any, n: int, tokens: int, settings: Settings) -> list[Row]:
    where = server.name
    chat_case = f"{where}: {n} concurrent chats x {tokens} tokens"
    tool_case = f"{where}: {n} concurrent tool calls, tool_choice=auto"
    contenders = [
        Contender(f"{OURS} {where}", f"{__name__}:ours", {"base_url": server.base_url}),
        Contender(
            f"{PEER} {where}",
            f"{__name__}:chat_openai",
            {"base_url": server.base_url, "model": served_name(server)},
        ),
    ]
    chat = {"kind": "chat", "n": n, "tokens": tokens}
    tools = {"kind": "tools", "n": n, "tokens": 48}
    cases = [
        (chat_case, chat, Metric("rate", "tok/s", work=n * tokens)),
        (tool_case, tools, Metric("rate", "req/s", work=n)),
    ]
    return compare(
        "served",
        contenders,
        cases,
        settings,
        baseline=contenders[1].name,
        targets={(contenders[0].name, chat_case): 0.95},
        warmup={"kind": "chat", "n": 2, "tokens": 4},
        extra_keys=("valid_share", "errors"),
    )
