"""Servers a workload starts on 127.0.0.1 and stops again, and ChatOpenAI on them.

The server classes are the remote tests' (``tests/backends/remote/servers.py``):
``FuriosaServer`` (furiosa-llm's server code over the stand-in native engine, from
``.venv-furiosa``) and ``VllmServer`` (vLLM's OpenAI server on CPU, eager, fp32, from
``.venv-vllm``: ``bash scripts/setup_vllm_env.sh``, or ``bash scripts/bench.sh --vllm``).
vLLM runs with ``VLLM_CPU_OMP_THREADS_BIND`` unset (``auto``): on 2 cores that is one OMP
thread, the other core left to its engine-core and API processes, about twice the
concurrent throughput of binding both cores to OMP.

Used by ``workloads/served.py`` (ours and ChatOpenAI on the same server) and
``workloads/single_user.py`` (vLLM CPU as a peer beside llama.cpp). The tests' module is
imported only inside these functions, so a worker process imports it only if it serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .harness import Runner, log
from .inputs import chat_messages

# ignore_eos is vLLM's and furiosa-llm's own request field: each chat makes exactly
# max_tokens tokens, as on every other side.
IGNORE_EOS: dict[str, Any] = {"extra_body": {"ignore_eos": True}}


def vllm_available() -> bool:
    """Whether ``.venv-vllm`` has an interpreter to serve from."""
    from tests.backends.remote.servers import VLLM_PYTHON

    return VLLM_PYTHON.exists()


def vllm_server(logs: Path, extra: Sequence[str] = ()) -> Any:
    """vLLM serving the converted default chat model (the directory our engine loads);
    not started yet (``serving``). Call in the driver."""
    from tests.backends.remote.servers import VllmServer

    from .peers import chat_model_dir

    return VllmServer("vllm", logs, Path(chat_model_dir()), extra=extra)


@contextmanager
def serving(server: Any) -> Iterator[Any]:
    """Start ``server`` (waits until it answers /health), stop it on the way out."""
    log(f"starting {server.name} (log {server.log_path})")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def served_name(server: Any) -> str:
    """The model name the server answers to (its first ``/v1/models`` entry)."""
    return str(server.get("/v1/models").json()["data"][0]["id"])


def vllm_version(server: Any) -> str:
    """The running vLLM's version (``GET /version``)."""
    return str(server.get("/version").json()["version"])


def chat_openai(base_url: str, model: str) -> Any:
    """``ChatOpenAI(base_url=...)`` as a user points it at a server: greedy, no retries."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=base_url, api_key="none", model=model, temperature=0, max_retries=0)  # type: ignore[arg-type]


def run_chats(
    chat: Any, loop: asyncio.AbstractEventLoop, case: dict[str, Any], options: dict[str, Any]
) -> None:
    """``case["n"]`` chats x ``case["tokens"]`` tokens, all sent at once (``abatch``), on
    ``loop`` (one per worker: ChatOpenAI's async client stays bound to the first);
    ``options``: the call options that make each chat exactly that long."""
    model = chat.bind(max_tokens=case["tokens"], **options)
    loop.run_until_complete(model.abatch(chat_messages(case["n"])))


def chat_openai_chats(base_url: str, model: str) -> Runner:
    """A runner: ChatOpenAI.abatch of ``n`` concurrent chats x ``tokens``, EOS ignored."""
    chat = chat_openai(base_url, model)
    loop = asyncio.new_event_loop()

    def run(case: dict[str, Any]) -> dict[str, float]:
        run_chats(chat, loop, case, IGNORE_EOS)
        return {}

    return run
