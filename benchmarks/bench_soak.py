"""The full soak (issue 8): 2,000 requests through LangChain's FuriosaChat and LlamaIndex's
FuriosaLLM, 30% cancelled, then checks for leftovers, memory and solo-equal outputs.

It runs ``tests/core/test_soak.py`` with more requests and prints its summary:

    .venv/bin/python -m benchmarks.bench_soak [REQUESTS] [SEED]     # default 2000 requests
"""

from __future__ import annotations

import os
import sys

import pytest


def main(argv: list[str]) -> int:
    os.environ["FURIOSA_SOAK_REQUESTS"] = argv[0] if argv else "2000"
    if len(argv) > 1:
        os.environ["FURIOSA_SOAK_SEED"] = argv[1]
    return int(pytest.main(["-q", "-s", "-p", "no:cacheprovider", "tests/core/test_soak.py"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
