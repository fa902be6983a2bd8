"""Run furiosa-llm 2026.4's real OpenAI-compatible server over ``StandInNativeEngine``.

    .venv-furiosa/bin/python tests/backends/remote/serve_furiosa_llm.py \
        [--task generate|embed] [--port 0] [--served-model-name NAME] [--api-key KEY] \
        [other `furiosa-llm serve` flags: --enable-auto-tool-choice --tool-call-parser hermes]

Prints ``PORT=<n>`` (flushed) once uvicorn accepts connections on 127.0.0.1, then serves
until SIGTERM. The server is furiosa-llm's own (``furiosa_llm.server.app.init_app``, with
furiosa-llm's ``serve`` argument parser); only its model comes from us, through the seam
upstream's tests use (``app.load_llm_from_args``): an object with what furiosa-llm's
``LLM`` exposes, whose native engine is ``StandInNativeEngine`` over our torch engine.

Test-only routes added beside furiosa-llm's (under ``/_stand_in``):
- ``GET /state``: what the native engine saw: ``params`` (per request, as received),
  ``aborted_in_flight`` (aborts that arrived while that request's native stream ran:
  furiosa-llm also aborts every request after it completes, so ``aborted`` alone says
  nothing), ``in_flight``, ``finished`` (id -> last finish reason), ``native_stats``,
  ``num_steps``;
- ``POST /reset`` clears it; ``POST /fault`` arms a fault (``fault_injection.py``).
``GET /metrics`` (furiosa-llm's route) carries ``furiosa_llm_num_requests_running`` /
``_waiting`` gauges from the torch engine, the names the real native engine exports.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import socket
import sys
import threading
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from fastapi import Request  # module level: FastAPI resolves route annotations here

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests" / "backends" / "furiosa"), str(HERE)]


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    """Our own flags, and the rest for furiosa-llm's ``serve`` parser."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="generate", choices=["generate", "embed"])
    parser.add_argument("--port", type=int, default=0, help="0: pick a free port")
    parser.add_argument("--served-model-name", default="stand-in")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--log-level", default="warning")
    return parser.parse_known_args()


class StandInLLM:
    """What furiosa-llm's server reads of its ``LLM`` (``llm.`` in ``furiosa_llm/server``)."""

    def __init__(self, engine: Any, tokenizer: Any, task: str, model_dir: str, served: str):
        from furiosa_llm.generation_config import get_diff_sampling_params
        from furiosa_llm.metadata.runtime import ModelMetadata

        config = json.loads((Path(model_dir) / "config.json").read_text())
        self.engine = engine
        self.tokenizer = tokenizer
        self.model_config = config
        self.model_metadata = ModelMetadata(
            model_type=config.get("model_type", "llama"),
            task=task,
            hf_configs=config,
            trust_remote_code=False,
            use_binary_seq_class=False,
        )
        self.model_id_or_path = model_dir
        self.served_model_name = served
        self.artifact_id = "stand-in"
        self.max_model_len = int(engine.max_model_len)
        self.is_generative_model = task == "generate"
        self.default_generation_config = get_diff_sampling_params(model_dir)
        self.mm_processor_kwargs = None

    def shutdown(self) -> None:
        self.engine.shutdown()  # ends wait_until_terminated, which the server watches


class Recorder:
    """Wraps the stand-in's instance methods to tell a real abort from the one furiosa-llm
    sends after every request (uvicorn reports http.disconnect once a response is done)."""

    def __init__(self, stand_in: Any, torch_native: Any) -> None:
        self.stand_in = stand_in
        self.torch_native = torch_native
        self.in_flight: set[str] = set()
        self.finished: dict[str, str | None] = {}
        self.aborted_in_flight: list[str] = []
        self._stream = stand_in.stream_generate
        self._abort = stand_in.abort_request
        stand_in.stream_generate = self.stream_generate
        stand_in.abort_request = self.abort_request
        stand_in.get_prometheus_metrics = self.metrics

    async def stream_generate(
        self, inputs: Any, params: Any, request_id: str | None = None
    ) -> AsyncGenerator[Any, None]:
        rid = str(request_id)
        self.in_flight.add(rid)
        reason = None
        try:
            async for out in self._stream(inputs, params, request_id):
                reason = out.outputs[0].finish_reason
                yield out
        finally:
            self.in_flight.discard(rid)
            self.finished[rid] = reason

    def abort_request(self, request_id: str) -> None:
        if request_id in self.in_flight:
            self.aborted_in_flight.append(request_id)
        self._abort(request_id)

    def metrics(self) -> str:
        stats = self.torch_native.stats()
        return (
            "# TYPE furiosa_llm_num_requests_running gauge\n"
            f"furiosa_llm_num_requests_running {stats.running}\n"
            "# TYPE furiosa_llm_num_requests_waiting gauge\n"
            f"furiosa_llm_num_requests_waiting {stats.waiting}\n"
        )

    def state(self) -> dict[str, Any]:
        return {
            "received": [rid for rid, _ in self.stand_in.received],
            "params": [{"request_id": rid, **_plain(p)} for rid, p in self.stand_in.received],
            "aborted": list(self.stand_in.aborted),
            "aborted_in_flight": list(self.aborted_in_flight),
            "in_flight": sorted(self.in_flight),
            "finished": dict(self.finished),
            "native_stats": dataclasses.asdict(self.torch_native.stats()),
            "num_steps": getattr(self.torch_native, "num_steps", None),
        }

    def reset(self) -> None:
        self.stand_in.received.clear()
        self.stand_in.aborted.clear()
        self.aborted_in_flight.clear()
        self.finished.clear()


def _plain(params: Any) -> dict[str, Any]:
    """furiosa-llm's SamplingParams / PoolingParams as JSON-able values."""
    out: dict[str, Any] = {}
    for name, value in vars(params).items():
        if dataclasses.is_dataclass(value):
            value = {k: v for k, v in vars(value).items() if v is not None}
        plain = (str, int, float, bool, list, dict, type(None))
        out[name] = value if isinstance(value, plain) else repr(value)
    return out


def build_app(own: argparse.Namespace, port: int, serve_flags: list[str]) -> Any:
    import furiosa_llm.server.app as server_app
    from fault_injection import FaultInjector
    from furiosa_llm.cli.serve import add_serve_args
    from furiosa_llm.server.middleware import AuthenticationMiddleware
    from furiosa_llm.tokenizer import get_tokenizer
    from stand_in import StandInNativeEngine

    from furiosa_integrations.engine import get_engine

    options = {} if own.max_model_len is None else {"max_model_len": own.max_model_len}
    torch_engine = get_engine(task=own.task, backend="torch", **options)
    stand_in = StandInNativeEngine(torch_engine.native)
    model_dir = str(torch_engine.tokenizer.name_or_path)
    # The real LLM's tokenizer loader (a transformers tokenizer, as the server's detokenizer
    # needs); it reads the same tokenizer.json as the torch engine.
    llm = StandInLLM(stand_in, get_tokenizer(model_dir), own.task, model_dir, own.served_model_name)

    parser = argparse.ArgumentParser()
    add_serve_args(parser)  # `furiosa-llm serve`'s own parser
    args = parser.parse_args(
        [model_dir, "--host", "127.0.0.1", "--port", str(port),
         "--served-model-name", own.served_model_name, "--uvicorn-log-level", own.log_level,
         *serve_flags]
    )  # fmt: skip
    server_app.load_llm_from_args = lambda *_, **__: llm
    app = server_app.init_app(args)
    if own.api_key:  # what run_server adds for --api-key
        app.add_middleware(AuthenticationMiddleware, tokens=[own.api_key])

    recorder = Recorder(stand_in, torch_engine.native)
    injector = FaultInjector()

    async def state() -> dict[str, Any]:
        return recorder.state()

    async def reset() -> dict[str, bool]:
        recorder.reset()
        injector.clear()
        return {"ok": True}

    async def fault(request: Request) -> dict[str, bool]:
        injector.arm(await request.json())
        return {"ok": True}

    app.add_api_route("/_stand_in/state", state, methods=["GET"])
    app.add_api_route("/_stand_in/reset", reset, methods=["POST"])
    app.add_api_route("/_stand_in/fault", fault, methods=["POST"])
    return injector.wrap(app)


def main() -> None:
    own, serve_flags = parse_args()
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", own.port))
    port = sock.getsockname()[1]
    app = build_app(own, port, serve_flags)
    server = uvicorn.Server(uvicorn.Config(app, log_level=own.log_level, access_log=False))

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task  # start-up failed: raise its error
                return
            await asyncio.sleep(0.05)
        print(f"PORT={port}", flush=True)
        await task

    asyncio.run(serve())
    # The torch engine's thread is a daemon; nothing else should keep the process alive.
    if threading.active_count() > 1:
        os._exit(0)


if __name__ == "__main__":
    main()
