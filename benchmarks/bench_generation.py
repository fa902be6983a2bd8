"""Mixed lengths at the concurrencies you name: FuriosaChat against transformers' static
``generate``, max_tokens spread over 16..128 (or ``--low``..``--high``).

The ``mixed_lengths`` workload of ``run_all`` at sizes of your choice (it runs one size:
16 with --quick, 32 x 16..256 at full size), through the same harness: each side in its
own process, a warm-up, alternating repeats. Static batching runs every row to the
longest; continuous batching frees a row as soon as it is done. Throughput counts only
the tokens each request asked for. Prints the table; writes nothing.

    .venv/bin/python -m benchmarks.bench_generation [--sizes 16,64] [--repeats 3]

Uniform lengths (N concurrent x 64 tokens against static ``generate``) are the
``chat_throughput`` workload's ceiling rows: ``python -m benchmarks.run_all --only
chat_throughput``.
"""

from __future__ import annotations

import argparse

from .harness import Settings, markdown_table, prepare_driver
from .workloads.mixed_lengths import compare_sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64", help="comma-separated concurrencies")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--low", type=int, default=16, help="shortest max_tokens")
    parser.add_argument("--high", type=int, default=128, help="longest max_tokens")
    args = parser.parse_args()
    settings = Settings(repeats=args.repeats)
    prepare_driver(settings)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(markdown_table(compare_sizes(settings, sizes, args.low, args.high)))


if __name__ == "__main__":
    main()
