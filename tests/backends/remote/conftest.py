"""Servers for the remote backend's tests, started once per session on 127.0.0.1.

- ``furiosa_server`` / ``furiosa_embed_server``: furiosa-llm 2026.4's real server code
  (``init_app`` over ``StandInNativeEngine``, in ``.venv-furiosa``), serving the default
  chat and embedding models; shared by every test, never killed.
- ``victim_server``: a third one, with an API key, that the fault and soak tests kill and
  restart.
Each is a subprocess; the fixtures stop them by pid at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from furiosa_integrations.engine import AsyncEngine, get_engine

from .servers import FuriosaServer, furiosa_server_available, start_all

VICTIM_KEY = "sk-test-7f3a9c1e2b"  # the victim server's API key (a test value)


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def furiosa_servers(server_logs: Path) -> Iterator[dict[str, FuriosaServer]]:
    if not furiosa_server_available():
        pytest.skip("needs .venv-furiosa with furiosa-llm's server (scripts/setup_furiosa_env.sh)")
    servers = {
        "generate": FuriosaServer("furiosa-generate", server_logs),
        "embed": FuriosaServer("furiosa-embed", server_logs, task="embed"),
    }
    start_all(list(servers.values()))
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def furiosa_server(furiosa_servers: dict[str, FuriosaServer]) -> FuriosaServer:
    return furiosa_servers["generate"]


@pytest.fixture(scope="session")
def furiosa_embed_server(furiosa_servers: dict[str, FuriosaServer]) -> FuriosaServer:
    return furiosa_servers["embed"]


@pytest.fixture(scope="session")
def victim_server(server_logs: Path) -> Iterator[FuriosaServer]:
    if not furiosa_server_available():
        pytest.skip("needs .venv-furiosa with furiosa-llm's server (scripts/setup_furiosa_env.sh)")
    server = FuriosaServer(
        "furiosa-victim",
        server_logs,
        extra=["--api-key", VICTIM_KEY, "--served-model-name", "victim"],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def healthy_victim(victim_server: FuriosaServer) -> FuriosaServer:
    """The victim server, running (a test before may have killed it)."""
    if victim_server.process is None or victim_server.process.poll() is not None:
        victim_server.start()
    victim_server.reset()
    return victim_server


@pytest.fixture(scope="session")
def remote_chat(furiosa_server: FuriosaServer) -> AsyncEngine:
    return get_engine(base_url=furiosa_server.base_url)


@pytest.fixture(scope="session")
def remote_embed(furiosa_embed_server: FuriosaServer) -> AsyncEngine:
    return get_engine(task="embed", base_url=furiosa_embed_server.base_url)


@pytest.fixture
def served(furiosa_server: FuriosaServer) -> Iterator[FuriosaServer]:
    """The shared server with its records cleared, and nothing left running after the test."""
    furiosa_server.reset()
    yield furiosa_server
    furiosa_server.wait_server_idle()
