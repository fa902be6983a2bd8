"""Run every workload against its peer and write benchmarks/results/.

    python -m benchmarks.run_all            # full sizes (the default)
    python -m benchmarks.run_all --quick    # smaller sizes, one repeat: about ten minutes
    python -m benchmarks.run_all --only embeddings,cold_start --repeats 2 --threads 1
    python -m benchmarks.run_all --quick --only constraints --results-dir /tmp/bench

Writes ``results/RESULTS.md`` (``RESULTS-quick.md`` for --quick), a PNG chart beside
it and the raw rows as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback
from pathlib import Path

from .harness import RESULTS_DIR, Row, Settings, log, prepare_driver, write_results
from .machine import describe_cpu
from .workloads import WORKLOADS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--repeats", type=int, help="timed runs per contender (default 3, quick 1)")
    parser.add_argument(
        "--threads", type=int, help="torch threads in every process (default: torch's)"
    )
    parser.add_argument(
        "--omp-wait-policy",
        default="",
        help="force OMP_WAIT_POLICY (PASSIVE or ACTIVE) on every process, ours and the "
        "peers'; by default libgomp's own",
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of {','.join(WORKLOADS)}"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where the table, chart and JSON go (default benchmarks/results/)",
    )
    args = parser.parse_args()
    settings = Settings(
        quick=args.quick,
        repeats=args.repeats or (1 if args.quick else 3),
        threads=args.threads,
        omp_wait_policy=args.omp_wait_policy,
        only=[w for w in args.only.split(",") if w],
    )
    unknown = set(settings.only) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {sorted(unknown)}")
    prepare_driver(settings)
    start = time.perf_counter()
    rows: list[Row] = []
    for name in settings.only or WORKLOADS:
        module = importlib.import_module(f"{__package__}.workloads.{name}")
        try:
            rows += module.run(settings)
        except Exception as exc:  # one broken workload must not lose the others' figures
            log(f"{name} FAILED: {exc!r}\n{traceback.format_exc()}")
    minutes = (time.perf_counter() - start) / 60
    import torch

    mode = "quick" if settings.quick else "full"
    header = (
        f"# Benchmarks: furiosa-integrations against its peers ({mode} mode)\n\n"
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{describe_cpu()}, torch {torch.__version__}, threads "
        f"{settings.threads or torch.get_num_threads()}, "
        f"OMP_WAIT_POLICY={settings.omp_wait_policy or 'libgomp default'}, "
        f"repeats {settings.repeats}, "
        f"took {minutes:.1f} min. Each contender runs in its own process (peak RSS is that "
        "process's), after a warm-up, alternating with the others. Ratios > 1 mean ours is "
        "better. The machine is shared with other jobs, so absolute figures are noisy; the "
        "ratios come from interleaved runs."
    )
    stem = "RESULTS-quick" if settings.quick else "RESULTS"
    if settings.only:
        stem += "-" + "-".join(settings.only)
    if settings.omp_wait_policy:
        stem += f"-omp-{settings.omp_wait_policy.lower()}"
    path = write_results(rows, header, stem, args.results_dir)
    log(f"wrote {path} ({minutes:.1f} min)")


if __name__ == "__main__":
    main()
