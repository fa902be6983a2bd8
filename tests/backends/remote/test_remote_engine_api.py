"""furiosa-llm's engine API (EngineArgs with ``base_url``, AsyncLLMEngine, LLMEngine) over
furiosa-llm's real server: the seed's API, unchanged, against a served model."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import TypedDict, cast

import pytest

from furiosa_integrations.engine import (
    AsyncEngine,
    AsyncEngineArgs,
    AsyncLLMEngine,
    EngineArgs,
    LLMEngine,
    PoolingParams,
    RequestOutput,
    RequestOutputKind,
    SamplingParams,
)
from furiosa_integrations.furiosa_llm_api.engine_from_args import choose_backend
from tests.engine_checks import wait_idle

from .servers import FuriosaServer

pytestmark = pytest.mark.models


class Greedy(TypedDict):
    temperature: float
    max_tokens: int


GREEDY = Greedy(temperature=0.0, max_tokens=8)


def test_engine_args_take_a_base_url() -> None:
    parser = EngineArgs.add_cli_args(argparse.ArgumentParser())
    args = EngineArgs.from_cli_args(
        parser.parse_args(["--base-url", "http://fleet:8000/v1", "--served-model-name", "m"])
    )
    assert (args.base_url, args.served_model_name, choose_backend(args)) == (
        "http://fleet:8000/v1",
        "m",
        "remote",
    )
    assert choose_backend(EngineArgs(backend="remote", base_url="http://x:1")) == "remote"
    with pytest.raises(ValueError, match="needs base_url"):
        EngineArgs(backend="remote")
    with pytest.raises(ValueError, match="base_url is for backend"):
        EngineArgs(backend="torch", base_url="http://x:1")
    assert "api_key" not in repr(EngineArgs(base_url="http://x:1", api_key="sk-secret"))


async def test_async_llm_engine_over_the_server(
    furiosa_server: FuriosaServer, chat_engine: AsyncEngine
) -> None:
    api = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(base_url=furiosa_server.base_url))
    local = AsyncLLMEngine.from_engine(chat_engine)
    prompt = chat_engine.render_chat([{"role": "user", "content": "Name a colour."}])
    for kind in (RequestOutputKind.CUMULATIVE, RequestOutputKind.DELTA):
        params = SamplingParams(**GREEDY, output_kind=kind)
        ours = [o async for o in api.generate(prompt, params, f"served-{kind.name}")]
        want = [o async for o in local.generate(prompt, params, f"local-{kind.name}")]
        assert [o.outputs[0].text for o in ours] == [o.outputs[0].text for o in want]
        assert ours[-1].finished and ours[-1].prompt_token_ids == want[-1].prompt_token_ids
    # Abort by id ends the stream as aborted, here and on the server.
    long = SamplingParams(max_tokens=2000, temperature=0.0, ignore_eos=True)
    reasons: list[str | None] = []
    async for out in api.generate(prompt, long, "served-abort"):
        if not reasons:
            await api.abort("served-abort")
        reasons.append(out.outputs[0].finish_reason)
    assert reasons[-1] == "abort"
    await wait_idle(api.engine)
    furiosa_server.wait_server_idle()


async def test_async_llm_engine_encodes_on_the_embed_server(
    furiosa_embed_server: FuriosaServer,
) -> None:
    args = AsyncEngineArgs(base_url=furiosa_embed_server.base_url, task="embed")
    api = AsyncLLMEngine.from_engine_args(args)
    [out] = [o async for o in api.encode("hello there", PoolingParams(), "served-embed")]
    assert len(out.outputs.data) == 384


def test_llm_engine_steps_over_the_server(
    furiosa_server: FuriosaServer, chat_engine: AsyncEngine
) -> None:
    engine = LLMEngine.from_engine_args(EngineArgs(base_url=furiosa_server.base_url))
    engine.add_request("step-1", "The capital of France is", SamplingParams(**GREEDY))
    finished: list[RequestOutput] = []
    while engine.has_unfinished_requests():
        finished += [cast(RequestOutput, o) for o in engine.step() if o.finished]
    want = chat_engine.generate_sync("The capital of France is", params=SamplingParams(**GREEDY))
    assert [o.outputs[0].text for o in finished] == [want.text]
    engine.shutdown()


def test_command_line_chat_over_the_server(
    furiosa_server: FuriosaServer, chat_engine: AsyncEngine
) -> None:
    question = "What is the capital of France?"
    command = [sys.executable, "-m", "furiosa_integrations", "chat", question, "--max-tokens", "8"]
    env = {**os.environ, "FURIOSA_BASE_URL": furiosa_server.base_url}
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=True)
    messages = [{"role": "user", "content": question}]
    want = chat_engine.generate_sync(messages=messages, params=SamplingParams(**GREEDY))
    assert out.stdout.strip() == want.text.strip()
