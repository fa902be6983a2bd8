"""Every native decoder family against transformers, on tiny random-weight models.

For each family (tiny_models.FAMILIES): its logits match transformers' within 1e-4 in
fp32 through packed prefill, a prefill that continues a copied prefix, and batched decode
at mixed positions; the scripted layers (TorchScript) give bit-identical logits to the same
code run eagerly; eight prompts of different lengths run together through the engine
(continuous batching, prefix sharing) give exactly the greedy tokens transformers'
``generate`` gives each alone; and a JSON schema still constrains its output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from furiosa_integrations.backends.torch import create_torch_engine
from furiosa_integrations.backends.torch.decoders import NativeDecoder, PrefillSegment, load_decoder
from furiosa_integrations.backends.torch.loader import read_config
from furiosa_integrations.engine import AsyncEngine, SamplingParams, StructuredOutputsParams
from furiosa_integrations.models.tokenizer import load_tokenizer
from tests.backends.torch import tiny_models
from tests.backends.torch.decoder_checks import assert_decode_paths_agree
from tests.engine_checks import wait_idle

pytestmark = pytest.mark.models  # every test here loads a model

TOLERANCE = 1e-4
MAX_TOKENS = 6


class Tiny:
    def __init__(self, model_type: str, path: Path) -> None:
        self.model_type = model_type
        self.path = path
        self.reference = tiny_models.reference(path)

    @torch.inference_mode()
    def last_logits(self, tokens: list[int]) -> torch.Tensor:
        logits: torch.Tensor = self.reference(torch.tensor([tokens])).logits[0, -1]
        return logits


@pytest.fixture(scope="module", params=list(tiny_models.FAMILIES))
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    model_type = request.param
    return Tiny(model_type, tiny_models.build(model_type, tmp_path_factory.mktemp(model_type)))


@pytest.fixture(scope="module")
def engine(tiny: Tiny) -> Any:
    native = create_torch_engine(tiny.path, "generate", device="cpu", dtype="float32")
    yield AsyncEngine(native, load_tokenizer(tiny.path), tiny.model_type)
    native.shutdown()


def test_logits_match_transformers(tiny: Tiny) -> None:
    decoder = load_decoder(
        tiny.path, read_config(tiny.path), torch.device("cpu"), torch.float32, 256
    )
    assert decoder.native and decoder.family == tiny.model_type
    decoder.cache.ensure(3, 64)
    prompts = tiny_models.prompts_of_many_lengths(seed=1)
    a, b = prompts[0], prompts[1]  # 5 and 37 tokens
    c = b[:20] + prompts[3][:9]  # shares b's first 20 tokens
    # 1. Two prompts packed into one prefill.
    packed = torch.tensor(a + b)
    logits = decoder.prefill(
        packed, [PrefillSegment(0, 0, len(a), 0), PrefillSegment(1, len(a), len(b), 0)]
    )
    for row, prompt in zip(logits, (a, b), strict=True):
        assert (row - tiny.last_logits(prompt)).abs().max().item() < TOLERANCE
    # 2. A third slot copies b's cached prefix and prefills only the rest.
    decoder.cache.copy_prefix(1, 2, 20)
    logits_c = decoder.prefill(torch.tensor(c[20:]), [PrefillSegment(2, 0, len(c) - 20, 20)])
    assert (logits_c[0] - tiny.last_logits(c)).abs().max().item() < TOLERANCE
    # 3. Batched decode, each row at its own position, past the sliding window.
    sequences = [a, b, c]
    nxt = [int(row.argmax()) for row in (logits[0], logits[1], logits_c[0])]
    for _ in range(4):
        positions = torch.tensor([len(s) for s in sequences])
        step = decoder.decode(torch.tensor(nxt), positions)
        sequences = [[*s, t] for s, t in zip(sequences, nxt, strict=True)]
        for row, sequence in zip(step, sequences, strict=True):
            assert (row - tiny.last_logits(sequence)).abs().max().item() < TOLERANCE
        nxt = [int(row.argmax()) for row in step]


def test_gguf_groups_run_our_kernels_path(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GGUF-like checkpoint of the family (linear weights on Q4_1's grid): the default
    light weights keep the groups and the decoder runs our kernels (16-bit activations,
    fused RoPE with cache writes and SiLU where the family has them); logits stay within
    0.1% of transformers' on the same weights; the scripted step equals the
    eager one, and each row's logits are the same bits alone or beside others."""
    from furiosa_integrations.backends.torch import groups_cache
    from furiosa_integrations.backends.torch.kernels.grouped_linear import native_kernel_loaded
    from tests.backends.torch.test_engine_speed_paths import assert_rows_on_their_own

    if not native_kernel_loaded():
        pytest.skip("the GGUF kernels are native (x86 with AVX2 and a C++ compiler)")
    path = tiny_models.build(tiny.model_type, tmp_path / "q4_1", gguf_groups=True)
    # the groups it finds are kept with the test's files, not in the user's cache
    monkeypatch.setattr(groups_cache, "default_cache_dir", lambda: tmp_path)
    reference = tiny_models.reference(path)
    decoder = load_decoder(
        path, read_config(path), torch.device("cpu"), torch.float32, 256, light_weights=True
    )
    assert isinstance(decoder, NativeDecoder)
    assert decoder.own_kernels and "Q4_1" in decoder.weights, decoder.weights
    prompts = tiny_models.prompts_of_many_lengths(seed=3)
    a, b = prompts[1], prompts[3]
    decoder.cache.ensure(2, 64)
    logits = decoder.prefill(
        torch.tensor(a + b), [PrefillSegment(0, 0, len(a), 0), PrefillSegment(1, len(a), len(b), 0)]
    )
    for row, prompt in zip(logits, (a, b), strict=True):
        with torch.inference_mode():
            expected = reference(torch.tensor([prompt])).logits[0, -1]
        assert (row - expected).abs().max() < 1e-3 * expected.abs().max()
    assert_decode_paths_agree(decoder, prompts[:3])
    assert_rows_on_their_own(decoder, prompts[0], prompts[2])


def test_scripted_layers_equal_eager_bit_for_bit(tiny: Tiny) -> None:
    """On CPU the layers run as TorchScript: the same kernels in the same order as the
    eager code, so prefill and batched decode logits are identical, not just close."""
    decoder = load_decoder(
        tiny.path, read_config(tiny.path), torch.device("cpu"), torch.float32, 256
    )
    assert_decode_paths_agree(decoder, tiny_models.prompts_of_many_lengths(seed=2)[:3])


async def test_batched_greedy_equals_transformers_generate(tiny: Tiny, engine: AsyncEngine) -> None:
    native = engine.native
    prompts = tiny_models.prompts_of_many_lengths()
    expected = [tiny_models.reference_greedy(tiny.reference, p, MAX_TOKENS) for p in prompts]
    steps_before = native.num_steps  # type: ignore[attr-defined]
    results = await tiny_models.generate_together(native, prompts, MAX_TOKENS)
    assert [tokens for tokens, _ in results] == expected
    # They ran as one batch (a straggler step or two as requests arrive) ...
    assert native.num_steps - steps_before <= MAX_TOKENS + 2  # type: ignore[attr-defined]
    # ... and the ones sharing a long prefix copied it instead of computing it.
    assert sum(cached > 0 for _, cached in results) >= 2
    await wait_idle(engine)


async def test_json_schema_constrains_every_family(engine: AsyncEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"enum": ["yes", "no"]}, "n": {"enum": [1, 2, 3]}},
        "required": ["answer", "n"],
        "additionalProperties": False,
    }
    params = SamplingParams(
        max_tokens=40, temperature=0, structured_outputs=StructuredOutputsParams(json=schema)
    )
    result = await engine.generate("Is it raining? Answer in JSON:", params=params)
    value = json.loads(result.text)
    assert value["answer"] in ("yes", "no") and value["n"] in (1, 2, 3)
    await wait_idle(engine)


def test_gemma3_config_from_older_transformers(tmp_path: Path) -> None:
    """Gemma 3 checkpoints saved before transformers 5 name the local RoPE base
    ``rope_local_base_freq``, scale only global layers with ``rope_scaling`` and give the
    layer pattern as ``sliding_window_pattern``; they read the same."""
    path = tiny_models.build("gemma3_text", tmp_path)
    config = json.loads((path / "config.json").read_text())
    for key in ("rope_parameters", "layer_types", "_sliding_window_pattern"):
        config.pop(key, None)
    config.update(
        rope_theta=1e6,
        rope_local_base_freq=1e4,
        rope_scaling={"rope_type": "linear", "factor": 4.0},
        sliding_window_pattern=2,
    )
    (path / "config.json").write_text(json.dumps(config))
    decoder = load_decoder(path, read_config(path), torch.device("cpu"), torch.float32, 256)
    layers = decoder.model.layers  # type: ignore[attr-defined]
    assert [layer.window for layer in layers] == [tiny_models.WINDOW, None]
    decoder.cache.ensure(1, 64)
    prompt = tiny_models.prompts_of_many_lengths()[1]
    logits = decoder.prefill(torch.tensor(prompt), [PrefillSegment(0, 0, len(prompt), 0)])
    expected = Tiny("gemma3_text", path).last_logits(prompt)
    assert (logits[0] - expected).abs().max().item() < TOLERANCE


def test_a_refused_script_runs_the_same_layers_eagerly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should TorchScript refuse the layers, the decoder says so and runs them eagerly,
    with the logits transformers gives."""

    def refuse(module: Any) -> Any:
        raise RuntimeError("no TorchScript here")

    monkeypatch.setattr(torch.jit, "script", refuse)
    path = tiny_models.build("llama", tmp_path)
    with caplog.at_level("WARNING"):
        decoder = load_decoder(path, read_config(path), torch.device("cpu"), torch.float32, 64)
    assert "running it eagerly" in caplog.text and "no TorchScript here" in caplog.text
    assert not isinstance(decoder.stack, torch.jit.ScriptModule)  # type: ignore[attr-defined]
    prompt = tiny_models.prompts_of_many_lengths()[0]
    decoder.cache.ensure(1, 64)
    logits = decoder.prefill(torch.tensor(prompt[:-1]), [PrefillSegment(0, 0, len(prompt) - 1, 0)])
    step = decoder.decode(torch.tensor(prompt[-1:]), torch.tensor([len(prompt) - 1]))
    expected = Tiny("llama", path)
    assert (logits[0] - expected.last_logits(prompt[:-1])).abs().max().item() < TOLERANCE
    assert (step[0] - expected.last_logits(prompt)).abs().max().item() < TOLERANCE
