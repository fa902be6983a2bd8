"""Generation throughput: our engine's continuous batching vs transformers' static `generate`.

Same model (the default SmolLM2-135M), same chat prompts, same device, in one run,
alternating, after a warm-up. Prints tokens/s for each and the ratio.

    .venv/bin/python -m benchmarks.bench_generation [--repeats 3] [--sizes 16,64]

Workloads:
- uniform: N concurrent requests x 64 tokens (EOS ignored so both make exactly 64);
- mixed: N requests with max_tokens spread over 16..128. Static batching runs every
  row to the longest; continuous batching frees a row as soon as it is done.
Throughput counts only the tokens each request asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from furiosa_integrations.engine import AsyncEngine, SamplingParams, get_engine

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


def chat_prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [
            {
                "role": "user",
                "content": f"Write a short story about {TOPICS[i % len(TOPICS)]} (#{i}).",
            }
        ]
        for i in range(n)
    ]


def mixed_lengths(n: int, low: int = 16, high: int = 128) -> list[int]:
    return [low + (i * 37) % (high - low + 1) for i in range(n)]


async def run_engine(engine: AsyncEngine, prompts: list[Any], lengths: list[int]) -> float:
    start = time.perf_counter()
    await asyncio.gather(
        *(
            engine.generate(
                messages=p, params=SamplingParams(max_tokens=m, temperature=0.0, ignore_eos=True)
            )
            for p, m in zip(prompts, lengths, strict=True)
        )
    )
    return time.perf_counter() - start


class StaticGenerate:
    """transformers' batched `generate` on the same weights: the static-batching ceiling."""

    def __init__(self, engine: AsyncEngine, batch_size: int) -> None:
        from transformers import AutoModelForCausalLM

        from furiosa_integrations.models.resolve import resolve_model

        path = resolve_model(None, "generate").path
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
        self.tokenizer = engine.tokenizer
        self.tokenizer.padding_side = "left"
        self.engine = engine
        self.batch_size = batch_size

    @torch.inference_mode()
    def run(self, prompts: list[Any], lengths: list[int]) -> float:
        texts = [self.engine.render_chat(p) for p in prompts]
        start = time.perf_counter()
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[i : i + self.batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            )
            longest = max(lengths[i : i + self.batch_size])
            self.model.generate(
                **batch,
                max_new_tokens=longest,
                min_new_tokens=longest,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return time.perf_counter() - start


def measure(
    label: str, runs: dict[str, Callable[[], float]], tokens: int, repeats: int
) -> dict[str, float]:
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():  # alternate, so drift hits both alike
            times[name].append(fn())
    rates = {name: tokens / statistics.median(t) for name, t in times.items()}
    names = list(runs)
    print(f"\n## {label} ({tokens} requested tokens, median of {repeats})")
    for name in names:
        t = times[name]
        spread = f"median {statistics.median(t):.2f}s, min {min(t):.2f}s, max {max(t):.2f}s"
        print(f"  {name:<28} {rates[name]:8.1f} tok/s  ({spread})")
    print(f"  ratio {names[0]} / {names[1]}: {rates[names[0]] / rates[names[1]]:.2f}x")
    return rates


def compare(
    label: str, engine: AsyncEngine, static: StaticGenerate, lengths: list[int], repeats: int
) -> dict[str, float]:
    prompts = chat_prompts(len(lengths))
    runs = {
        "furiosa engine": lambda: asyncio.run(run_engine(engine, prompts, lengths)),
        "transformers generate": lambda: static.run(prompts, lengths),
    }
    return measure(label, runs, sum(lengths), repeats)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="16,64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    engine = get_engine()
    device = getattr(engine.native, "device", "?")
    print(f"model {engine.model_name}, torch threads {torch.get_num_threads()}, device {device}")
    for n in (int(s) for s in args.sizes.split(",")):
        static = StaticGenerate(engine, batch_size=n)
        label = f"uniform: {n} concurrent x {args.tokens} tokens"
        compare(label, engine, static, [args.tokens] * n, args.repeats)
        label = f"mixed: {n} concurrent, max_tokens 16..128"
        compare(label, engine, static, mixed_lengths(n), args.repeats)


if __name__ == "__main__":
    main()
