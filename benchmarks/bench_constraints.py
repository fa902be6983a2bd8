"""The cost of constrained decoding: 16 JSON-schema requests vs 16 unconstrained ones.

Same model (the default SmolLM2-135M), same chat prompts, same engine, in one run,
alternating, after a warm-up that also compiles the schemas (compiled grammars are
cached, so a schema is compiled once per process). Prints tokens/s for each and the
ratio; the target is constrained >= 0.85 x unconstrained.

    .venv/bin/python -m benchmarks.bench_constraints [--requests 16] [--repeats 3]

Equal work: each constrained request runs until its JSON object is complete; its
unconstrained twin (same prompt) ignores EOS and makes exactly as many tokens. So both
runs have the same prompts, token counts and batch shape step by step, and the ratio is
the cost of the constraints alone (masks, matcher updates).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from furiosa_integrations.engine import AsyncEngine, SamplingParams, get_engine
from furiosa_integrations.engine.structured import StructuredOutputsParams

TOPICS = [
    "the sea",
    "a robot",
    "autumn",
    "coffee",
    "a lighthouse",
    "mathematics",
    "a cat",
    "trains",
]

_LINE = {"type": "string", "minLength": 8, "maxLength": 24}
SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 30},
            "lines": {"type": "array", "items": _LINE, "minItems": 5, "maxItems": 5},
        },
        "required": ["title", "lines"],
    },
    {
        "type": "object",
        "properties": {
            "characters": {
                "type": "array",
                "minItems": 4,
                "maxItems": 4,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "maxLength": 12},
                        "age": {"type": "integer", "minimum": 1, "maximum": 99},
                        "hero": {"type": "boolean"},
                    },
                    "required": ["name", "age", "hero"],
                },
            }
        },
        "required": ["characters"],
    },
    {
        "type": "object",
        "properties": {
            "mood": {"enum": ["happy", "sad", "calm", "tense"]},
            "scenes": {"type": "array", "items": _LINE, "minItems": 4, "maxItems": 4},
            "rating": {"type": "number", "minimum": 0, "maximum": 10},
        },
        "required": ["mood", "scenes", "rating"],
    },
    {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "minLength": 30, "maxLength": 60},
            "keywords": {
                "type": "array",
                "items": {"type": "string", "maxLength": 12},
                "minItems": 4,
                "maxItems": 4,
            },
        },
        "required": ["summary", "keywords"],
    },
]


def chat_prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": f"Write a story about {TOPICS[i % len(TOPICS)]} (#{i})."}]
        for i in range(n)
    ]


def constrained_params(i: int, max_tokens: int) -> SamplingParams:
    schema = SCHEMAS[i % len(SCHEMAS)]
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=0.0,
        structured_outputs=StructuredOutputsParams(json=schema),
    )


def plain_params(max_tokens: int) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True)


async def run(
    engine: AsyncEngine, prompts: list[Any], params: list[SamplingParams]
) -> tuple[float, int, list[str]]:
    """Wall time, tokens made, and the texts of one concurrent batch."""
    start = time.perf_counter()
    results = await asyncio.gather(
        *(engine.generate(messages=m, params=p) for m, p in zip(prompts, params, strict=True))
    )
    elapsed = time.perf_counter() - start
    tokens = sum(r.usage.completion_tokens for r in results)
    return elapsed, tokens, [r.text for r in results]


async def main(requests: int, repeats: int, max_tokens: int) -> None:
    engine = get_engine()
    prompts = chat_prompts(requests)
    constrained = [constrained_params(i, max_tokens) for i in range(requests)]
    # Warm-up: loads the model, compiles every schema, runs one of each kind.
    for p in constrained[: len(SCHEMAS)]:
        engine.native.check_structured_outputs(p.structured_outputs)  # type: ignore[attr-defined]
    await run(engine, prompts[:2], [plain_params(4), constrained_params(0, 4)])
    # Greedy constrained output is deterministic: learn each request's length once.
    first = await asyncio.gather(
        *(engine.generate(messages=m, params=p) for m, p in zip(prompts, constrained, strict=True))
    )
    lengths = [len(r.outputs[0].token_ids) for r in first]
    plain = [plain_params(n) for n in lengths]
    mask_seconds = replay_constraints(engine, constrained, [r.outputs[0].token_ids for r in first])

    rates: dict[str, list[float]] = {"unconstrained": [], "constrained": []}
    counts: dict[str, int] = {}
    texts: list[str] = []
    for _ in range(repeats):
        for name, params in (("unconstrained", plain), ("constrained", constrained)):
            elapsed, tokens, outs = await run(engine, prompts, params)
            rates[name].append(tokens / elapsed)
            counts[name] = tokens
            if name == "constrained":
                texts = outs
    valid = sum(_is_json_object(t) for t in texts)
    print(
        f"{requests} concurrent requests, greedy, {repeats} alternating repeats, "
        f"{min(lengths)}..{max(lengths)} tokens per request"
    )
    for name, values in rates.items():
        print(
            f"  {name:>13}: median {statistics.median(values):7.1f} tok/s "
            f"(runs: {', '.join(f'{v:.1f}' for v in values)}; {counts[name]} tokens per run)"
        )
    ratio = statistics.median(rates["constrained"]) / statistics.median(rates["unconstrained"])
    print(f"  constrained / unconstrained = {ratio:.3f} (target >= 0.85)")
    print(f"  constrained outputs that parse as JSON objects: {valid}/{len(texts)}")
    print(
        f"  constraint work (masks + matcher updates, replayed alone): {mask_seconds * 1e3:.1f} ms "
        f"for {sum(lengths)} tokens = {mask_seconds / sum(lengths) * 1e6:.0f} us/token, "
        f"{mask_seconds / (sum(lengths) / statistics.median(rates['constrained'])):.1%} "
        "of the constrained run's wall time"
    )


def replay_constraints(
    engine: AsyncEngine, params: list[SamplingParams], outputs: list[list[int]]
) -> float:
    """Seconds spent in constraint code for these outputs, step by step as the engine
    does it (one packed bitmask for the batch, one masking call, one accept per row).
    Measured apart from the model, so the figure does not depend on machine load."""
    from furiosa_integrations.backends.torch.grammar import apply_bitmask

    factory = engine.native.constraint_factory  # type: ignore[attr-defined]
    constraints = [factory(p) for p in params]
    vocab = engine.native.vocab_size  # type: ignore[attr-defined]
    logits = torch.zeros(len(params), vocab)
    spent = 0.0
    for step in range(max(len(o) for o in outputs)):
        rows = [i for i, o in enumerate(outputs) if step < len(o)]
        start = time.perf_counter()
        bitmask = torch.full((len(params), (vocab + 31) // 32), -1, dtype=torch.int32)
        masked = [i for i in rows if constraints[i].fill_bitmask(bitmask, i)]
        if masked:
            apply_bitmask(logits, bitmask, masked)
        for i in rows:
            constraints[i].accept(outputs[i][step])
        spent += time.perf_counter() - start
    return spent


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128, help="cap per constrained request")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.repeats, args.max_tokens))
