"""Architectures with no native decoder run through transformers, under our scheduler.

A tiny OPT (learned positions with an offset, ReLU, no native family) loads through the
fallback: the log says it is the slower path and ``decoder.native`` is False; its logits
are transformers' own; eight prompts run together give the greedy tokens ``generate``
gives each alone, with prefix sharing on, also when a cache cannot be cropped and is
rebuilt from the slot's tokens.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from furiosa_integrations.backends.torch import create_torch_engine
from furiosa_integrations.backends.torch.decoders import (
    PrefillSegment,
    TransformersDecoder,
    load_decoder,
    transformers_fallback,
)
from furiosa_integrations.backends.torch.loader import read_config
from tests.backends.torch import tiny_models

pytestmark = pytest.mark.models  # every test here loads a model

MAX_TOKENS = 6


@pytest.fixture(scope="module", params=list(tiny_models.FALLBACK_FAMILIES))
def tiny_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.build(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def reference(tiny_path: Path) -> Any:
    return tiny_models.reference(tiny_path)


def test_fallback_is_logged_and_matches_transformers(
    tiny_path: Path, reference: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        decoder = load_decoder(
            tiny_path, read_config(tiny_path), torch.device("cpu"), torch.float32, 256
        )
    assert isinstance(decoder, TransformersDecoder)
    assert not decoder.native and decoder.family == "transformers"
    assert any("slower path" in r.getMessage() for r in caplog.records)
    prompts = tiny_models.prompts_of_many_lengths(seed=2)
    a, b = prompts[0], prompts[1]
    logits = decoder.prefill(
        torch.tensor(a + b), [PrefillSegment(0, 0, len(a), 0), PrefillSegment(1, len(a), len(b), 0)]
    )
    decoder.cache.copy_prefix(1, 2, 20)  # slot 2 starts from b's first 20 tokens
    c = b[:20] + a
    logits_c = decoder.prefill(torch.tensor(a), [PrefillSegment(2, 0, len(a), 20)])
    step = decoder.decode(torch.tensor([7, 8, 9]), torch.tensor([len(a), len(b), len(c)]))
    with torch.inference_mode():
        for got, tokens in [
            (logits[0], a),
            (logits[1], b),
            (logits_c[0], c),
            (step[0], [*a, 7]),
            (step[1], [*b, 8]),
            (step[2], [*c, 9]),
        ]:
            expected = reference(torch.tensor([tokens])).logits[0, -1]
            assert (got - expected).abs().max().item() < 1e-4


@pytest.mark.parametrize("croppable", [True, False], ids=["cropped-copy", "rebuilt"])
async def test_fallback_batch_equals_generate_one_at_a_time(
    tiny_path: Path, reference: Any, croppable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies: list[Any] = []
    real = transformers_fallback._cropped_copy

    def spy(*args: Any) -> Any:
        # Not croppable: a cache type that cannot be cut back, so slots rebuild from tokens.
        copies.append(real(*args) if croppable else None)
        return copies[-1]

    monkeypatch.setattr(transformers_fallback, "_cropped_copy", spy)
    prompts = tiny_models.prompts_of_many_lengths()
    expected = [tiny_models.reference_greedy(reference, p, MAX_TOKENS) for p in prompts]
    native = create_torch_engine(tiny_path, "generate", device="cpu", dtype="float32")
    try:
        results = await tiny_models.generate_together(native, prompts, MAX_TOKENS)
    finally:
        native.shutdown()
    assert [tokens for tokens, _ in results] == expected
    assert sum(cached > 0 for _, cached in results) >= 2  # prefix sharing stayed on
    assert copies and all((copy is not None) == croppable for copy in copies)


def test_native_family_with_length_dependent_rope_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Llama whose RoPE scaling changes with the sequence length (``dynamic``) is not
    something a static table reproduces: it runs through transformers, and the log says why."""
    path = tiny_models.build("llama", tmp_path)
    config = read_config(path)
    config["rope_parameters"] = {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}
    (path / "config.json").write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING):
        decoder = load_decoder(path, read_config(path), torch.device("cpu"), torch.float32, 256)
    assert not decoder.native
    assert any("'dynamic' RoPE" in r.getMessage() for r in caplog.records)
