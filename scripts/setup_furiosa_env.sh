#!/usr/bin/env bash
# Create .venv-furiosa: the real furiosa-llm Python package (and its native wheel, whose
# module imports without an NPU) for testing the furiosa backend on any machine.
# furiosa-llm pins torch==2.10.0; this venv instead reuses .venv's packages (torch 2.13
# CPU, transformers, pydantic...) through a .pth file, and installs furiosa-llm with
# --no-deps plus the few modules its imports need (fastapi, starlette,
# partial-json-parser, ml_dtypes) and what its OpenAI server needs (uvicorn, openai, jiter,
# openai-harmony, pyjson5, click, distro: ~5 MB of wheels; the remote backend's tests run
# furiosa-llm's real server from this venv). Fast no-op when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=.venv-furiosa
FURIOSA_LLM_VERSION="${FURIOSA_LLM_VERSION:-2026.4.0}"
STAMP="$VENV/.furiosa-setup-$(sha256sum scripts/setup_furiosa_env.sh | cut -c1-16)-$FURIOSA_LLM_VERSION"
if [ -f "$STAMP" ]; then exit 0; fi
rm -rf "$VENV"
.venv/bin/python -m venv --without-pip "$VENV"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
BASE_SITE="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# addsitedir (not a plain path line) so .venv's own .pth files, the editable install of
# this project among them, are processed too; .venv-furiosa's packages come first.
echo "import site; site.addsitedir('$BASE_SITE')" > "$SITE/_furiosa_integrations_base_venv.pth"
.venv/bin/python -m pip --python "$VENV/bin/python" install -q --no-deps \
    "furiosa-llm==$FURIOSA_LLM_VERSION" "furiosa-llm-native==$FURIOSA_LLM_VERSION" \
    fastapi==0.128.0 starlette==0.50.0 annotated-doc==0.0.4 partial-json-parser==0.2.1.1.post5 \
    ml_dtypes==0.5.4 \
    uvicorn==0.30.6 openai==2.54.0 jiter==0.19.0 openai-harmony==0.0.8 pyjson5==2.0.1 \
    click==8.5.1 distro==1.9.0
"$VENV/bin/python" -c "import furiosa_llm.llm_engine, furiosa.llm_native.llm, furiosa_integrations"
"$VENV/bin/python" -c "import furiosa_llm.server.app, uvicorn"
touch "$STAMP"
