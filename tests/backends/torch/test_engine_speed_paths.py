"""The torch engine's fast paths keep its behaviour: same-step prefix sharing, the greedy
sampler shortcut, batched delivery to event loops, and packed (oneDNN, fbgemm fp16, GGUF groups)
linears."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import torch

from furiosa_integrations.backends.loop_sink import LoopSink, deliver_all
from furiosa_integrations.backends.torch.sampler import SamplingState, sample
from furiosa_integrations.engine import AsyncEngine, SamplingParams
from tests.engine_checks import wait_idle

SYSTEM = "You answer in one short sentence. " * 6  # a shared prefix well over 16 tokens


def chat(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Name a colour, number {i}."},
    ]


async def test_burst_sharing_a_prefix_is_admitted_together(chat_engine: AsyncEngine) -> None:
    """Eight chats sharing a system prompt: one prefills it, seven copy it in the same step,
    so all finish in about max_tokens decode steps, and each answer equals its solo run."""
    native = chat_engine.native
    params = SamplingParams(max_tokens=6, temperature=0, ignore_eos=True)
    solo = [(await chat_engine.generate(messages=chat(i), params=params)).text for i in range(8)]
    await wait_idle(chat_engine)
    steps_before = native.num_steps  # type: ignore[attr-defined]
    prefill_before = native.num_prefill_tokens  # type: ignore[attr-defined]
    results = await asyncio.gather(
        *(chat_engine.generate(messages=chat(i), params=params) for i in range(8))
    )
    steps = native.num_steps - steps_before  # type: ignore[attr-defined]
    computed = native.num_prefill_tokens - prefill_before  # type: ignore[attr-defined]
    assert [r.text for r in results] == solo
    # Requests reach the engine as the event loop submits them; allow a straggler step or two.
    assert steps <= 6 + 2, steps
    prompt = results[0].usage.prompt_tokens
    assert sum(r.usage.cached_tokens > 0 for r in results) >= 6
    assert computed < 8 * prompt * 0.6
    await wait_idle(chat_engine)


def test_greedy_shortcut_matches_the_full_sampler() -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 300)
    plain = [
        SamplingState(SamplingParams(temperature=0), None, frozenset({7}), [1, 2]) for _ in range(5)
    ]
    # Asking for logprobs takes the general path; the chosen tokens must not change.
    general = [
        SamplingState(SamplingParams(temperature=0, logprobs=0), None, frozenset({7}), [1, 2])
        for _ in range(5)
    ]
    fast_tokens, fast_logprobs = sample(logits.clone(), plain)
    slow_tokens, slow_logprobs = sample(logits.clone(), general)
    assert fast_tokens == slow_tokens == logits.argmax(dim=-1).tolist()
    assert fast_logprobs == [None] * 5 and all(lp is not None for lp in slow_logprobs)
    # min_tokens still bans EOS on the general path.
    banned = [SamplingState(SamplingParams(temperature=0, min_tokens=2), None, frozenset({3}), [1])]
    row = torch.zeros(1, 10)
    row[0, 3] = 5.0
    assert sample(row, banned)[0] != [3]


async def test_deliver_all_batches_per_loop_and_reports_closed_loops() -> None:
    got: list[int] = []
    live = LoopSink(asyncio.get_running_loop(), got.append)
    closed_loop = asyncio.new_event_loop()
    closed_loop.close()
    dead = LoopSink(closed_loop, got.append)
    assert deliver_all([(live, 1), (dead, 2), (live, 3)]) == [True, False, True]
    await asyncio.sleep(0.01)
    assert got == [1, 3]  # in order, and nothing from the closed loop


async def test_a_holding_sink_delivers_everything_with_its_last_item() -> None:
    got: list[int] = []
    held = LoopSink(asyncio.get_running_loop(), got.append, hold=True)
    live = LoopSink(asyncio.get_running_loop(), got.append)
    assert deliver_all([(held, 1), (live, 2)]) == [True, True]
    assert deliver_all([(held, 3)]) == [True]
    await asyncio.sleep(0.01)
    assert got == [2]  # the held items wait for the last one
    assert held(4)
    await asyncio.sleep(0.01)
    assert got == [2, 1, 3, 4]
    closed_loop = asyncio.new_event_loop()
    closed_loop.close()
    assert deliver_all([(LoopSink(closed_loop, got.append, hold=True), 5)]) == [False]


async def test_final_only_requests_get_their_steps_at_the_end(chat_engine: AsyncEngine) -> None:
    """A request that reads only the end (``RequestOutputKind.FINAL_ONLY``, what a
    non-streaming ``invoke`` asks for) gets the same answer, its steps all delivered with
    the last one: the caller's loop is woken once, not once a token. With stop strings,
    which are matched on the text as it comes, steps still come one by one."""
    from furiosa_integrations.engine import RequestOutputKind

    native: Any = chat_engine.native
    each = SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)
    final = each.clone(output_kind=RequestOutputKind.FINAL_ONLY)
    stop = final.clone(stop=["zzz-never"])
    texts, arrivals = {}, {}
    for name, params in (("each", each), ("final", final), ("stop", stop)):
        seen: list[int] = []
        text = ""
        async for chunk in chat_engine.stream(messages=chat(0), params=params):
            seen.append(native.num_steps)
            text += chunk.text
        texts[name], arrivals[name] = text, seen
    assert texts["final"] == texts["each"] == texts["stop"]
    assert len(set(arrivals["final"])) == 1  # every chunk after the last step
    assert len(set(arrivals["each"])) > 4 and len(set(arrivals["stop"])) > 4
    await wait_idle(chat_engine)


def test_packed_linears_agree_with_f_linear_at_every_row_count() -> None:
    """oneDNN's packed matmul (the CPU decode path) gives F.linear's result, at one row and
    at a batch, with and without bias; a weight that was never packed goes to F.linear."""
    from furiosa_integrations.backends.torch.packed_linear import (
        linear,
        pack,
        packing_available,
    )

    cpu = torch.device("cpu")
    assert packing_available(cpu, torch.float32)  # torch's CPU wheels ship oneDNN
    torch.manual_seed(0)
    weight, bias, other = torch.randn(96, 64), torch.randn(96), torch.randn(32, 64)
    packed = pack(weight)
    for rows in (1, 3, 16, 40):
        x = torch.randn(rows, 64)
        for b in (None, bias):
            expected = torch.nn.functional.linear(x, weight, b)
            torch.testing.assert_close(linear(x, packed, b), expected, rtol=1e-5, atol=1e-5)
        assert torch.equal(linear(x, other), torch.nn.functional.linear(x, other))
    batch = torch.randn(2, 5, 64)  # an encoder's [batch, width, hidden]
    torch.testing.assert_close(
        linear(batch, packed, bias), torch.nn.functional.linear(batch, weight, bias)
    )


def test_fbgemm_fp16_linears_keep_fp32_math() -> None:
    """fbgemm's fp16 weights (the CPU decode default): the result is F.linear over the
    fp16-rounded weight in fp32 math, bias added, for a row alone or in a batch (bit for
    bit on AVX-512 CPUs; on AVX2-only ones a row alone and in 16 differ in the last bits,
    see docs/guarantees.md); a weight past fp16's range stays fp32 (oneDNN-packed)."""
    from furiosa_integrations.backends.torch.packed_linear import (
        fp16_packing_available,
        linear,
        pack_fp16,
    )

    if not fp16_packing_available():
        pytest.skip("fbgemm's fp16 kernels need an x86 CPU with AVX2")
    torch.manual_seed(0)
    weight, bias = torch.randn(96, 64), torch.randn(96)
    packed = pack_fp16(weight)
    assert not isinstance(packed, torch.Tensor)
    rounded = weight.half().float()
    batch = torch.randn(16, 64)
    together = linear(batch, packed, bias)
    expected = torch.nn.functional.linear(batch, rounded, bias)
    torch.testing.assert_close(together, expected, rtol=1e-5, atol=1e-5)
    for rows in (1, 3, 15):
        torch.testing.assert_close(linear(batch[:rows], packed, bias), together[:rows])
    huge = weight.clone()
    huge[0, 0] = 1e5
    kept = pack_fp16(huge)
    assert isinstance(kept, torch.Tensor) and kept.is_mkldnn
    torch.testing.assert_close(
        linear(batch, kept), torch.nn.functional.linear(batch, huge), rtol=1e-5, atol=1e-3
    )


def test_default_decoder_stores_light_weights_on_cpu(chat_engine: AsyncEngine) -> None:
    """The default chat engine on this CPU: fp32 math over the GGUF's own groups (Q4_1
    layers, the Q8_0 LM head: 16-bit activations; our kernels, x86 with AVX2) or else
    fbgemm fp16 weights, every linear packed (qkv, o, up, down per layer; the LM head),
    the tied embedding plain."""
    from furiosa_integrations.backends.torch.kernels.grouped_linear import native_kernel_loaded
    from furiosa_integrations.backends.torch.packed_linear import fp16_packing_available

    decoder = chat_engine.native.decoder  # type: ignore[attr-defined]
    model = decoder.model
    weights = [w for layer in model.layers for w in (layer.qkv, layer.o, layer.up, layer.down)]
    weights.append(model.lm_head)
    if native_kernel_loaded():
        layers = len(weights) - 1
        assert decoder.weights == f"Q4_1 x{layers}, Q8_0 x1 (16-bit activations)"
        assert decoder.own_kernels and decoder.dtype == torch.float32
    elif fp16_packing_available():
        assert decoder.weights == f"fp16 x{len(weights)}" and decoder.dtype == torch.float32
        assert not decoder.own_kernels
    else:
        assert all(w.is_mkldnn for w in weights)
    assert not any(isinstance(w, torch.Tensor) and not w.is_mkldnn for w in weights)
    assert isinstance(model.embed, torch.Tensor) and not model.embed.is_mkldnn


@pytest.mark.models
@pytest.mark.parametrize(
    "setting, bits, tolerance", [("1", 16, 0.002), ("int8", 8, 0.15)], ids=["default", "int8"]
)
def test_gguf_weights_keep_the_files_groups(
    monkeypatch: pytest.MonkeyPatch, setting: str, bits: int, tolerance: float
) -> None:
    """The default GGUF's own Q4_1 layers and Q8_0 LM head (the tied embedding), found bit
    for bit, times 16-bit activations by default (logits within 0.2% of fp32 weights') or,
    with ``FURIOSA_GGUF_WEIGHTS=int8``, llama.cpp's 8-bit ones (within 15%); the same next
    token as fp32 weights on a clear prompt; the scripted step equals the eager one; every
    row's logits independent of the batch (bit for bit). A decode step's layers are one op
    (``decode_layers``), the same bits as the per-op layers."""
    from furiosa_integrations.backends.torch.decoders import (
        NativeDecoder,
        PrefillSegment,
        load_decoder,
    )
    from furiosa_integrations.backends.torch.kernels.grouped_linear import native_kernel_loaded
    from furiosa_integrations.backends.torch.loader import read_config
    from furiosa_integrations.models.resolve import resolve_model
    from furiosa_integrations.models.tokenizer import load_tokenizer
    from tests.backends.torch.decoder_checks import assert_decode_paths_agree

    if not native_kernel_loaded():
        pytest.skip("the GGUF kernels are native (x86 with AVX2 and a C++ compiler)")
    monkeypatch.setenv("FURIOSA_GGUF_WEIGHTS", setting)
    cpu = torch.device("cpu")
    path = resolve_model(None, "generate").path
    config = read_config(path)
    grouped = load_decoder(path, config, cpu, torch.float32, 256, light_weights=True)
    assert isinstance(grouped, NativeDecoder)
    layers = len(grouped.model.layers) * 4
    assert grouped.weights == f"Q4_1 x{layers}, Q8_0 x1 ({bits}-bit activations)"
    assert grouped.layers.fused_layers
    exact = load_decoder(path, config, cpu, torch.float32, 256)
    tokenizer = load_tokenizer(path)
    ids = tokenizer.encode("The capital of France is")
    logits = []
    for decoder in (exact, grouped):
        decoder.cache.ensure(1, 64)
        logits.append(decoder.prefill(torch.tensor(ids), [PrefillSegment(0, 0, len(ids), 0)])[0])
    assert int(logits[0].argmax()) == int(logits[1].argmax())
    assert (logits[0] - logits[1]).abs().max() < tolerance * logits[0].abs().max()
    prompts = ["The capital of France is", "Write a haiku about rain."]
    assert_decode_paths_agree(grouped, [tokenizer.encode(p) for p in prompts])
    assert_rows_on_their_own(grouped, tokenizer.encode("Once upon a time"), ids)


def test_gguf_weights_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``FURIOSA_GGUF_WEIGHTS``: unset or 1 (16-bit activations), int8, 0; anything else
    is an error at load, not a silent fallback."""
    from furiosa_integrations.backends.torch.packed_linear import gguf_activation_bits

    for value, bits in (("1", 16), ("int8", 8), ("0", None), ("INT8 ", 8)):
        monkeypatch.setenv("FURIOSA_GGUF_WEIGHTS", value)
        assert gguf_activation_bits() == bits
    monkeypatch.delenv("FURIOSA_GGUF_WEIGHTS")
    assert gguf_activation_bits() == 16
    monkeypatch.setenv("FURIOSA_GGUF_WEIGHTS", "4")
    with pytest.raises(ValueError, match="FURIOSA_GGUF_WEIGHTS"):
        gguf_activation_bits()


def assert_rows_on_their_own(decoder: Any, a: list[int], b: list[int]) -> None:
    """A sequence's logits are the same bits alone and beside another one, in a packed
    prefill and in a decode step, and whether its prefix was cached or not."""
    from furiosa_integrations.backends.torch.decoders import PrefillSegment

    decoder.cache.ensure(2, 128)
    n, m = len(a), len(b)
    alone = decoder.prefill(torch.tensor(a), [PrefillSegment(0, 0, n, 0)])[0]
    packed = decoder.prefill(
        torch.tensor(b + a), [PrefillSegment(1, 0, m, 0), PrefillSegment(0, m, n, 0)]
    )
    assert torch.equal(packed[1], alone)
    decoder.prefill(torch.tensor(a[:2]), [PrefillSegment(0, 0, 2, 0)])
    suffix = decoder.prefill(torch.tensor(a[2:]), [PrefillSegment(0, 0, n - 2, 2)])[0]
    assert torch.equal(suffix, alone)
    token = torch.tensor([int(alone.argmax())])
    one = decoder.decode(token, torch.tensor([n]))[0]
    decoder.prefill(torch.tensor(b + [7] * 20), [PrefillSegment(1, 0, m + 20, 0)])  # longer
    two = decoder.decode(torch.cat([token, torch.tensor([5])]), torch.tensor([n, m + 20]))[0]
    assert torch.equal(one, two)


@pytest.mark.models
def test_explicit_float32_keeps_fp32_weights_with_close_logits() -> None:
    """``dtype="float32"`` keeps fp32 weights (oneDNN-packed); the default's light weights
    (the GGUF's groups, or fp16) give logits within a small distance of them and the same
    next token."""
    from furiosa_integrations.backends.torch.decoders import PrefillSegment, load_decoder
    from furiosa_integrations.backends.torch.device import pick_light_weights
    from furiosa_integrations.backends.torch.loader import read_config
    from furiosa_integrations.models.resolve import resolve_model
    from furiosa_integrations.models.tokenizer import load_tokenizer

    cpu = torch.device("cpu")
    assert not pick_light_weights(cpu, "float32") and not pick_light_weights(cpu, "bfloat16")
    if not pick_light_weights(cpu, None):
        pytest.skip("light weights need an x86 CPU with AVX2")
    path = resolve_model(None, "generate").path
    config = read_config(path)
    exact = load_decoder(path, config, cpu, torch.float32, 256)
    light = load_decoder(path, config, cpu, torch.float32, 256, light_weights=True)
    assert exact.weights == "fp32 x121" and "fp32" not in light.weights
    assert exact.model.lm_head.is_mkldnn  # type: ignore[attr-defined]
    ids = load_tokenizer(path).encode("The capital of France is")
    logits = []
    for decoder in (exact, light):
        decoder.cache.ensure(1, 64)
        logits.append(decoder.prefill(torch.tensor(ids), [PrefillSegment(0, 0, len(ids), 0)])[0])
    assert (logits[0] - logits[1]).abs().max().item() < 0.05 * logits[0].abs().max().item()
    assert int(logits[0].argmax()) == int(logits[1].argmax())


@pytest.mark.models
def test_default_decoder_steps_agree_across_paths() -> None:
    """The default model's decode steps as the decoder runs them (one op a step on our
    kernels' path; TorchScript for fp16 weights), the same layers eagerly, and the layers
    as separate ops: identical logits. Its cache is not zeroed, and positions nothing has
    written are never read: NaN there changes nothing."""
    from furiosa_integrations.backends.torch.decoders import load_decoder
    from furiosa_integrations.backends.torch.device import pick_light_weights
    from furiosa_integrations.backends.torch.kv_cache import SlotKVCache
    from furiosa_integrations.backends.torch.loader import read_config
    from furiosa_integrations.models.resolve import resolve_model
    from furiosa_integrations.models.tokenizer import load_tokenizer
    from tests.backends.torch.decoder_checks import assert_decode_paths_agree, batched_steps

    cpu = torch.device("cpu")
    path = resolve_model(None, "generate").path
    decoder = load_decoder(
        path, read_config(path), cpu, torch.float32, 256, pick_light_weights(cpu, None)
    )
    tokenizer = load_tokenizer(path)
    prompts = ["The capital of France is", "Write a haiku about rain.", "1, 2, 3,"]
    ids = [tokenizer.encode(p) for p in prompts]
    assert_decode_paths_agree(decoder, ids)
    cache = decoder.cache
    assert isinstance(cache, SlotKVCache)  # a native decoder's
    if cache.zeroed:
        return
    clean = batched_steps(decoder, ids)
    cache.keys.fill_(float("nan"))
    cache.values.fill_(float("nan"))
    assert torch.equal(batched_steps(decoder, ids), clean)
