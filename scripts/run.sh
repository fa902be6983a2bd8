#!/usr/bin/env bash
# The main job on a fresh machine: set up, then run the furiosa-integrations CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m furiosa_integrations "$@"
