"""The full soak (issue 8): 2,000 requests through LangChain's FuriosaChat and LlamaIndex's
FuriosaLLM, 30% cancelled, then checks for leftovers, memory and solo-equal outputs.

It runs ``tests/core/test_soak.py`` with more requests and prints its summary:

    .venv/bin/python -m benchmarks.bench_soak [REQUESTS] [SEED]     # default 2000 requests

``--served`` runs the served soak instead (``tests/backends/remote/test_remote_soak.py``:
the same mix over furiosa-llm's real server, killed and restarted once mid-soak):

    .venv/bin/python -m benchmarks.bench_soak --served [REQUESTS] [SEED]
"""

from __future__ import annotations

import os
import sys

import pytest


def main(argv: list[str]) -> int:
    served = "--served" in argv
    argv = [a for a in argv if a != "--served"]
    size = "FURIOSA_REMOTE_SOAK_REQUESTS" if served else "FURIOSA_SOAK_REQUESTS"
    os.environ[size] = argv[0] if argv else "2000"
    if len(argv) > 1:
        os.environ["FURIOSA_SOAK_SEED"] = argv[1]
    test = "tests/backends/remote/test_remote_soak.py" if served else "tests/core/test_soak.py"
    return int(pytest.main(["-q", "-s", "-p", "no:cacheprovider", test]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
