#!/usr/bin/env bash
# The test command: set up, lint (ruff), type-check (mypy), the layer contract
# (lint-imports), the test suite, then the furiosa backend suite in .venv-furiosa.
#   bash scripts/test.sh -m "not models"    # the fast tier: no model is loaded (seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -q "$@"
# The furiosa backend against the real furiosa-llm package, in its own venv (furiosa-llm
# pins torch 2.10; see scripts/setup_furiosa_env.sh). Skipped when given test paths.
if [ $# -eq 0 ]; then
    bash scripts/setup_furiosa_env.sh
    .venv-furiosa/bin/python -m pytest -q tests/backends/furiosa
fi
