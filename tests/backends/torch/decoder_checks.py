"""Checks on a loaded decoder that more than one test module makes."""

from __future__ import annotations

from typing import Any

import torch

from furiosa_integrations.backends.torch.decoders import PrefillSegment
from furiosa_integrations.backends.torch.decoders.layer_stack import LayerStack


def assert_decode_paths_agree(decoder: Any, prompts: list[list[int]]) -> None:
    """``decoder``'s own decode steps (scripted, or eager where a step's layers are one op,
    ``decode_layers``), the same layers run eagerly (same weights), and the layers as
    separate ops: equal logits through three batched decode steps after a packed prefill of
    ``prompts`` (prefill runs the layers eagerly either way)."""
    own = decoder.stack
    # a fused stack runs as it is: its decode step is one op, nothing to script
    assert isinstance(own, torch.jit.ScriptModule) != own.fused_layers
    results = []
    eager = LayerStack(decoder.model, decoder.windows, decoder.own_kernels)
    per_op = LayerStack(decoder.model, decoder.windows, decoder.own_kernels, fuse=False)
    for stack in (own, eager, per_op):
        decoder.stack = stack
        results.append(batched_steps(decoder, prompts))
    decoder.stack = own
    for steps in results[1:]:
        assert torch.equal(results[0], steps)


def batched_steps(decoder: Any, prompts: list[list[int]]) -> torch.Tensor:
    """The logits of a packed prefill of ``prompts`` (from position 0) and of three batched
    greedy decode steps after it, one row per prompt and step."""
    decoder.cache.ensure(len(prompts), 64)
    starts = [sum(len(p) for p in prompts[:i]) for i in range(len(prompts))]
    segments = [PrefillSegment(i, starts[i], len(p), 0) for i, p in enumerate(prompts)]
    steps = [decoder.prefill(torch.tensor([t for p in prompts for t in p]), segments)]
    positions = torch.tensor([len(p) for p in prompts])
    for _ in range(3):
        steps.append(decoder.decode(steps[-1].argmax(-1), positions))
        positions = positions + 1
    return torch.cat(steps)
