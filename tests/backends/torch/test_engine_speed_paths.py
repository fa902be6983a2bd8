"""The torch engine's fast paths keep its behaviour: same-step prefix sharing, the greedy
sampler shortcut, batched delivery to event loops, and the OpenMP wait-policy hook."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

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


def test_package_import_prefers_passive_openmp_wait() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.pop("FURIOSA_KEEP_OMP_WAIT_POLICY", None)
    probe = "import os, furiosa_integrations; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "PASSIVE"
    # A user's own setting wins, and so does torch having been loaded first.
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "ACTIVE"
    first_torch = "import torch, os, furiosa_integrations; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run(
        [sys.executable, "-c", first_torch], env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "None"


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


def test_default_decoder_packs_its_weights_on_cpu(chat_engine: AsyncEngine) -> None:
    model = chat_engine.native.decoder.model  # type: ignore[attr-defined]
    weights = [w for layer in model.layers for w in (layer.qkv, layer.o, layer.up, layer.down)]
    packed = [w for w in [*weights, model.lm_head] if w.is_mkldnn]
    assert len(packed) == 4 * len(model.layers) + 1  # qkv, o, up, down per layer; LM head
    assert not model.embed.is_mkldnn  # the tied embedding table stays a plain tensor
