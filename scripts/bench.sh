#!/usr/bin/env bash
# Benchmarks against the peers (langchain-huggingface, llama-index HF, transformers):
# installs the bench extra, then runs every workload and writes benchmarks/results/.
#   bash scripts/bench.sh            # full sizes
#   bash scripts/bench.sh --quick    # about ten minutes on an idle 2-core machine
set -euo pipefail
cd "$(dirname "$0")/.."
FURIOSA_EXTRAS="${FURIOSA_EXTRAS:-langchain,llama-index,dev,bench}" bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m benchmarks.run_all "$@"
