"""(i) Constrained decoding: N concurrent JSON-schema requests against N unconstrained ones.

Both run in one process on one shared engine, alternating, greedy, with the same chat
prompts. Equal work: each constrained request runs until its JSON object is complete;
its unconstrained twin (same prompt) ignores EOS and makes exactly as many tokens. So
both sides have the same prompts, token counts and batch shape step by step, and the
ratio is the cost of the constraints alone (masks, matcher updates). Target: constrained
>= 0.85 x unconstrained. The warm-up runs the measured case itself, so every schema is
compiled (compiled grammars are cached per process) and each request's length is known
before anything is timed.

Beside the ratio: how many constrained outputs parse as JSON objects, and the constraint
work replayed alone on the recorded outputs (the engine's steps without the model), per
token and as a share of the constrained run's wall time, a figure machine load does not
swamp.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from ..harness import Contender, Metric, Row, Runner, Settings, compare
from ..inputs import chat_messages

CONSTRAINED = "constrained (JSON schema)"
UNCONSTRAINED = "unconstrained"
# Not the other workloads' "Write a short story about": these prompts are the ones the
# constraint figures so far were taken with.
ASK = "Write a story about"

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


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


def both() -> Runner:
    import torch

    from furiosa_integrations.backends.torch.grammar import apply_bitmask
    from furiosa_integrations.engine import SamplingParams, StructuredOutputsParams, get_engine

    engine = get_engine()
    native: Any = engine.native

    def constrained_params(i: int, max_tokens: int) -> SamplingParams:
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=0.0,
            structured_outputs=StructuredOutputsParams(json=SCHEMAS[i % len(SCHEMAS)]),
        )

    def replay_constraints(params: list[SamplingParams], outputs: list[list[int]]) -> float:
        """Seconds spent in constraint code for these outputs, step by step as the engine
        does it (one packed bitmask for the batch, one masking call, one accept per row)."""
        constraints = [native.constraint_factory(p) for p in params]
        vocab = native.vocab_size
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

    async def batch(messages: list[Any], params: list[SamplingParams]) -> tuple[float, list[Any]]:
        start = time.perf_counter()
        results = await asyncio.gather(
            *(engine.generate(messages=m, params=p) for m, p in zip(messages, params, strict=True))
        )
        return time.perf_counter() - start, results

    # Per (n, max_tokens): the constrained params, their unconstrained twins (same lengths)
    # and the constraint work replayed alone. Greedy constrained output is deterministic,
    # so one untimed run learns each request's length.
    plans: dict[tuple[int, int], tuple[list[SamplingParams], list[SamplingParams], float]] = {}

    def plan(n: int, max_tokens: int) -> tuple[list[SamplingParams], list[SamplingParams], float]:
        if (n, max_tokens) not in plans:
            constrained = [constrained_params(i, max_tokens) for i in range(n)]
            _, first = asyncio.run(batch(chat_messages(n, ASK), constrained))
            outputs = [r.outputs[0].token_ids for r in first]
            plain = [
                SamplingParams(max_tokens=len(o), temperature=0.0, ignore_eos=True) for o in outputs
            ]
            plans[n, max_tokens] = (constrained, plain, replay_constraints(constrained, outputs))
        return plans[n, max_tokens]

    def run(case: dict[str, Any]) -> dict[str, float]:
        constrained, plain, mask_seconds = plan(case["n"], case["max_tokens"])
        is_constrained = case["contender"] == CONSTRAINED
        params = constrained if is_constrained else plain
        elapsed, results = asyncio.run(batch(chat_messages(case["n"], ASK), params))
        tokens = sum(r.usage.completion_tokens for r in results)
        metrics = {"tok_s": tokens / elapsed, "tokens": float(tokens)}
        if is_constrained:
            lengths = [len(r.outputs[0].token_ids) for r in results]
            metrics["request_tokens_min"] = float(min(lengths))
            metrics["request_tokens_max"] = float(max(lengths))
            metrics["json_objects"] = float(sum(_is_json_object(r.text) for r in results))
            metrics["constraint_us_per_token"] = mask_seconds / tokens * 1e6
            metrics["constraint_share_of_wall"] = mask_seconds / elapsed
        return metrics

    return run


def run(settings: Settings) -> list[Row]:
    n, max_tokens = (8, 128) if settings.quick else (16, 128)
    case = f"{n} concurrent, JSON schema, up to {max_tokens} tokens"
    return compare(
        "constrained decoding",
        [
            Contender(CONSTRAINED, f"{__name__}:both", process="shared"),
            Contender(UNCONSTRAINED, f"{__name__}:both", process="shared"),
        ],
        [(case, {"n": n, "max_tokens": max_tokens}, Metric("tok_s", "tok/s"))],
        settings,
        baseline=UNCONSTRAINED,
        targets={(CONSTRAINED, case): 0.85},
        extra_keys=(
            "tokens",
            "request_tokens_min",
            "request_tokens_max",
            "json_objects",
            "constraint_us_per_token",
            "constraint_share_of_wall",
        ),
    )
