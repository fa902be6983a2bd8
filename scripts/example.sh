#!/usr/bin/env bash
# Run one of examples/*.py on a fresh machine: set up, then run it offline.
#   bash scripts/example.sh langchain_rag "How long does the ferry crossing take?"
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: scripts/example.sh NAME [ARGS...]  (NAME: langchain_rag, langchain_agent, langchain_rerank, llama_index_rag, llama_index_agent, llama_index_rerank)}"
shift
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python "examples/$name.py" "$@"
