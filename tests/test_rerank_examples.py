"""The rerank examples run as ``scripts/example.sh`` runs them (in-process here, so they
share the loaded engines), with the tiny test cross-encoder as ``--reranker``."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from furiosa_integrations.engine import AsyncEngine

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("name", ["langchain_rerank", "llama_index_rerank"])
def test_rerank_example_runs(
    name: str,
    chat_engine: AsyncEngine,
    embed_engine: AsyncEngine,
    cross_encoder_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("langchain_classic")
    argv = [name, "--reranker", str(cross_encoder_dir), "--top-n", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    out = capsys.readouterr().out
    answer = out.split("A:", 1)[1].split("Reranked sources:")[0]
    assert answer.strip()
    scores = [
        float(line.split()[0])
        for line in out.split("Reranked sources:")[1].splitlines()[1:]
        if line.strip()
    ]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
