"""(g) Cold start: ``FuriosaChat()`` answering its first request, each time in a new process.

The first process starts from an empty model cache, so it includes the one-time GGUF to
safetensors conversion of the bundled model; every later process loads the converted
files. The peer, ChatHuggingFace(HuggingFacePipeline), loads the same converted
directory (it cannot read the bundled GGUF without that conversion). Times are taken
inside the process: imports, then construction plus the first one-token answer
(``load + first reply``, what the 2 s target is about), and the whole process wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..harness import Row, Settings, log, ratio_row

OURS = "FuriosaChat()"
PEER = "ChatHuggingFace(HuggingFacePipeline)"

_PROBE = """
import json, time
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
{build_and_answer}
t2 = time.perf_counter()
print("BENCH" + json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1}}))
"""

_OURS = dict(
    imports="from furiosa_integrations import FuriosaChat",
    build_and_answer="FuriosaChat(temperature=0, max_tokens=1).invoke('hi')",
)
_PEER = dict(
    imports="from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline",
    build_and_answer=(
        "llm = HuggingFacePipeline.from_model_id(model_id={path!r}, task='text-generation', "
        "device=-1, pipeline_kwargs={{'max_new_tokens': 1, 'do_sample': False}})\n"
        "ChatHuggingFace(llm=llm, model_id={path!r}).invoke('hi')"
    ),
)


def _probe(code: str, env: dict[str, str]) -> dict[str, float]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    lines = [line for line in out.stdout.splitlines() if line.startswith("BENCH")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"cold-start probe failed:\n{out.stderr[-3000:]}")
    return {**json.loads(lines[-1][5:]), "wall_s": wall}


def run(settings: Settings) -> list[Row]:
    from ..peers import chat_model_dir

    env = {**os.environ, **settings.env()}
    if settings.threads:
        env["OMP_NUM_THREADS"] = str(settings.threads)
    ours_code = _PROBE.format(**_OURS)
    peer_code = _PROBE.format(
        imports=_PEER["imports"],
        build_and_answer=_PEER["build_and_answer"].format(path=chat_model_dir()),
    )
    rows: list[Row] = []
    ours: list[dict[str, float]] = []
    peer: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="furiosa-cold-") as cache:
        fresh_env = {**env, "FURIOSA_INTEGRATIONS_CACHE": str(Path(cache))}
        if not settings.quick:
            log("cold start: first process, empty model cache (includes the GGUF conversion)")
            first = _probe(ours_code, fresh_env)
            rows += [
                Row(
                    "cold start",
                    "first process, empty model cache",
                    OURS,
                    "s load + first reply",
                    [first["load_s"]],
                    False,
                    float("nan"),
                    extra={"import_s": first["import_s"], "process_wall_s": first["wall_s"]},
                )
            ]
        else:
            _probe(ours_code, fresh_env)  # fill the cache, untimed
        log("cold start: later processes, alternating")
        for i in range(settings.repeats):
            pair = [(ours, ours_code), (peer, peer_code)]
            for results, code in pair if i % 2 == 0 else pair[::-1]:
                results.append(_probe(code, fresh_env))
    case = "new process, model cache filled"
    rows += ratio_row(
        "cold start",
        case,
        OURS,
        PEER,
        [r["load_s"] for r in ours],
        [r["load_s"] for r in peer],
        "s load + first reply",
        higher_is_better=False,
        target=None,
    )
    for row, results in zip(rows[-2:], (ours, peer), strict=True):
        row.extra = {
            "import_s": sorted(r["import_s"] for r in results)[len(results) // 2],
            "process_wall_s": sorted(r["wall_s"] for r in results)[len(results) // 2],
        }
    second = rows[-2]
    second.limit = 2.0
    log(f"  second cold start: {second.median:.2f}s load + first reply (target <= 2 s)")
    return rows
