"""The layer contract (pyproject's ``[tool.importlinter]``) holds, and it does catch a
wrong-way import: the shared engine importing the composition above it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "furiosa_integrations"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)  # ahead of the editable install
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_its_layers() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "One-way layers KEPT" in result.stdout


def test_a_wrong_way_import_breaks_the_contract(tmp_path: Path) -> None:
    copy = tmp_path / "furiosa_integrations"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    outputs = copy / "core" / "outputs.py"
    # Function-local, as a cycle would be dodged: the contract sees it all the same.
    outputs.write_text(
        outputs.read_text()
        + "\n\ndef _engine():\n    from ..composition import get_engine\n\n    return get_engine\n"
    )
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "furiosa_integrations.core.outputs -> furiosa_integrations.composition" in result.stdout


def test_importing_the_adapters_loads_no_runtime() -> None:
    """Runtimes load with the first engine that needs them, not on import: torch (the torch
    backend), furiosa-llm and vLLM (optional), transformers (a fallback), httpx (the remote
    backend's client, ~45 ms of every import when it was eager)."""
    code = (
        "import sys\n"
        "import furiosa_integrations, furiosa_integrations.langchain\n"
        "import furiosa_integrations.llama_index\n"
        "from furiosa_integrations import FuriosaChat\n"
        "print(' '.join(sorted(m for m in ('torch', 'furiosa_llm', 'vllm', 'transformers',"
        " 'httpx') if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == ""
