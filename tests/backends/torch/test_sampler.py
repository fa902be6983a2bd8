"""The torch engine's sampler draws what the sampling options say: in proportion to the
tempered probabilities, only from top-k / top-p / min-p's tokens, never a banned token, and
a seeded row the same alone or in any batch. No model: logits are made here."""

from __future__ import annotations

import math

import pytest
import torch

from furiosa_integrations.backends.torch.sampler import SamplingState, _filter, sample
from furiosa_integrations.engine import SamplingParams


def states(params: SamplingParams, seeds: list[int]) -> list[SamplingState]:
    return [
        SamplingState(params, torch.Generator().manual_seed(seed), frozenset({99}), [1])
        for seed in seeds
    ]


def frequencies(logits: torch.Tensor, params: SamplingParams, draws: int) -> torch.Tensor:
    """How often each token is drawn, over ``draws`` rows with seeds 0..draws-1, drawn in
    batches of 200 rows."""
    tokens: list[int] = []
    for start in range(0, draws, 200):
        seeds = list(range(start, min(draws, start + 200)))
        batch = logits.expand(len(seeds), -1).clone()
        tokens += sample(batch, states(params, seeds))[0]
    return torch.bincount(torch.tensor(tokens), minlength=logits.shape[-1]).double() / draws


def assert_close_to(freq: torch.Tensor, expected: torch.Tensor, draws: int) -> None:
    """Every token's frequency within 5 standard deviations of its probability."""
    sigma = (expected * (1 - expected) / draws).sqrt()
    assert ((freq - expected).abs() <= 5 * sigma + 1e-12).all(), (freq, expected)


def test_draws_follow_the_tempered_probabilities() -> None:
    probs = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05, 0.0])
    logits = probs.log()  # the last token: -inf, never drawn
    draws = 20_000
    freq = frequencies(logits, SamplingParams(temperature=1.0), draws)
    assert freq[-1] == 0
    assert_close_to(freq, probs.double(), draws)
    # temperature 2: probabilities go as p ** (1 / 2)
    tempered = probs.double().sqrt()
    freq = frequencies(logits, SamplingParams(temperature=2.0), draws)
    assert_close_to(freq, tempered / tempered.sum(), draws)


def test_rare_tokens_keep_their_share() -> None:
    """A token at 0.5% among 50k others, last in the vocabulary (where the cumulative sum
    is largest), is drawn about as often as it should be."""
    vocab, draws = 50_000, 4_000
    logits = torch.full((vocab,), -30.0)
    logits[0] = 0.0
    logits[vocab - 1] = math.log(5e-3)
    probs = torch.softmax(logits.double(), dim=-1)
    freq = frequencies(logits, SamplingParams(), draws)
    assert_close_to(freq[[0, vocab - 1]], probs[[0, vocab - 1]], draws)
    assert freq[0] + freq[vocab - 1] == 1.0


def reference_filter(probs: torch.Tensor, top_k: int, top_p: float, min_p: float) -> torch.Tensor:
    """The filters with a full sort, as the sampler applied them before ``_nucleus``."""
    if 0 < top_k < probs.shape[-1]:
        kth = torch.topk(probs, top_k).values[-1]
        probs = torch.where(probs < kth, torch.zeros_like(probs), probs)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        drop_sorted = (cumulative - sorted_probs) > top_p * probs.sum()
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
    if min_p > 0.0:
        probs = probs.masked_fill(probs < min_p * probs.max(), 0.0)
    return probs


@pytest.mark.parametrize("spread", [8.0, 2.0, 0.3])  # peaked .. nearly flat
def test_top_p_keeps_the_tokens_a_full_sort_keeps(spread: float) -> None:
    torch.manual_seed(1)
    probs = torch.softmax(torch.randn(49_152) * spread, dim=-1)
    for top_k, top_p, min_p in [
        (0, 0.05, 0.0),
        (0, 0.5, 0.0),
        (0, 0.9, 0.0),
        (0, 0.999, 0.0),
        (40, 0.9, 0.0),
        (0, 0.95, 0.05),
    ]:
        fast = probs.clone()
        _filter(fast, top_k, top_p, min_p)
        slow = reference_filter(probs, top_k, top_p, min_p)
        assert torch.equal(fast, slow), (spread, top_k, top_p, min_p)
        assert (fast > 0).any()


def test_only_the_filters_tokens_are_drawn() -> None:
    torch.manual_seed(2)
    logits = torch.randn(1, 1000) * 2
    probs = torch.softmax(logits[0], dim=-1)
    for top_k, top_p, min_p in ((5, 1.0, 0.0), (0, 0.3, 0.0), (0, 1.0, 0.2)):
        kept = probs.clone()
        _filter(kept, top_k, top_p, min_p)
        allowed = set(torch.nonzero(kept).flatten().tolist())
        params = SamplingParams(temperature=1.0, top_k=top_k, top_p=top_p, min_p=min_p)
        tokens, _ = sample(logits.expand(500, -1).clone(), states(params, list(range(500))))
        assert set(tokens) <= allowed and len(set(tokens)) > 1, (top_k, top_p, min_p)


def test_a_seeded_row_draws_the_same_alone_or_in_a_batch() -> None:
    torch.manual_seed(3)
    logits = torch.randn(6, 49_152) * 3
    mixed = [
        SamplingParams(temperature=0.8, seed=11),
        SamplingParams(temperature=0),
        SamplingParams(temperature=1.0, top_p=0.9, seed=12),
        SamplingParams(temperature=1.3, top_k=50, seed=13),
        SamplingParams(temperature=0.7, min_p=0.1, seed=14),
        SamplingParams(seed=15),
    ]

    def seeded(params: SamplingParams) -> SamplingState:
        generator = None if params.greedy else torch.Generator().manual_seed(params.seed or 0)
        return SamplingState(params, generator, frozenset({99}), [1])

    together, _ = sample(logits.clone(), [seeded(p) for p in mixed])
    alone = [sample(logits[i : i + 1].clone(), [seeded(p)])[0][0] for i, p in enumerate(mixed)]
    assert together == alone
    assert together[1] == int(logits[1].argmax())


def test_banned_and_masked_tokens_are_never_drawn() -> None:
    """A token banned until min_tokens (its logit -inf) is not drawn, however likely it
    was and whatever the temperature."""
    logits = torch.zeros(1, 128)
    logits[0, 99] = 10.0  # the EOS of ``states``: banned for the first 5 tokens
    logits[0, :10] = torch.linspace(0.0, -100.0, 10)  # some far below the rest
    for temperature in (0.05, 1.0, 3.0):
        params = SamplingParams(temperature=temperature, min_tokens=5)
        tokens, _ = sample(logits.expand(300, -1).clone(), states(params, list(range(300))))
        assert 99 not in tokens and len(set(tokens)) > 1, temperature
