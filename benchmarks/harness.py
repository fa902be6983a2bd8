"""The shared benchmark harness: contenders in worker processes, alternation, table, chart.

Each contender (our adapter, or the peer a user would pick instead) lives in its own
worker process, so its peak memory is its own and nothing one side sets (torch threads,
caches) leaks into the other. The driver warms every contender up once, then runs the
repeats alternating A, B, A, B, ... so drift on this shared machine hits all sides alike.

A contender is a factory ``"module:function"`` that the worker imports and calls with
``kwargs``; it returns a runner ``run(case) -> dict`` that does one measured unit of work
and returns metrics (``seconds`` at least, or whatever the workload's metric reads).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import os
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Runner = Callable[[dict[str, Any]], dict[str, float]]


# ---- worker processes ----


def _peak_rss_reset() -> None:
    """Start a fresh peak-RSS window (Linux: VmHWM resets on writing 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker_main(
    conn: Connection, factory: str, kwargs: dict[str, Any], env: dict[str, str]
) -> None:
    os.environ.update(env)
    threads = env.get("BENCH_TORCH_THREADS")
    try:
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        module, name = factory.split(":")
        runner: Runner = getattr(importlib.import_module(module), name)(**kwargs)
        conn.send({"ok": True})
    except BaseException:
        conn.send({"ok": False, "error": traceback.format_exc()})
        return
    while True:
        message = conn.recv()
        if message is None:
            return
        try:
            _peak_rss_reset()
            start = time.perf_counter()
            metrics = dict(runner(message) or {})
            metrics.setdefault("seconds", time.perf_counter() - start)
            metrics["peak_mib"] = _peak_rss_mib()
            conn.send({"ok": True, "metrics": metrics})
        except BaseException:
            conn.send({"ok": False, "error": traceback.format_exc()})


@dataclass
class Contender:
    """One side of a comparison."""

    name: str
    factory: str  # "module:function" returning a Runner, called inside the worker
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Contenders with the same process key share one worker (and so one loaded engine);
    # their runner gets the contender's name as case["contender"].
    process: str | None = None

    @property
    def process_key(self) -> str:
        return self.process or self.name


class Worker:
    """A process hosting one contender's loaded model."""

    def __init__(self, contender: Contender, env: dict[str, str]) -> None:
        self.contender = contender
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_worker_main,
            args=(child, contender.factory, contender.kwargs, env),
            name=f"bench-{contender.name}",
            daemon=True,
        )
        self._process.start()

    def ready(self) -> None:
        self._check(self._receive())

    def run(self, case: dict[str, Any]) -> dict[str, float]:
        self._conn.send(case)
        return self._check(self._receive())["metrics"]  # type: ignore[no-any-return]

    def _receive(self) -> dict[str, Any]:
        try:
            return self._conn.recv()  # type: ignore[no-any-return]
        except EOFError:  # the process died (a peer's native crash says nothing else)
            self._process.join(5)
            raise RuntimeError(
                f"contender {self.contender.name!r} died (exit code {self._process.exitcode})"
            ) from None

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._process.join(30)
        if self._process.is_alive():
            self._process.kill()

    def _check(self, reply: dict[str, Any]) -> dict[str, Any]:
        if not reply["ok"]:
            raise RuntimeError(f"contender {self.contender.name!r} failed:\n{reply['error']}")
        return reply


# ---- measurement ----


@dataclass
class Metric:
    """How a workload reads its figure from a run's metrics."""

    key: str  # metrics key, or "rate" for work / seconds
    unit: str
    higher_is_better: bool = True
    work: float = 0.0  # for "rate": units of work per run (tokens, documents, queries)

    def value(self, metrics: dict[str, float]) -> float:
        if self.key == "rate":
            return self.work / metrics["seconds"]
        return metrics[self.key]


@dataclass
class Row:
    """One contender's figures on one case."""

    workload: str
    case: str
    contender: str
    unit: str
    samples: list[float]
    higher_is_better: bool
    peak_mib: float
    baseline: str | None = None  # the contender this row's ratio is against
    ratio: float | None = None  # > 1 means better than the baseline
    target: float | None = None  # the ratio the issue asks for
    extra: dict[str, float] = field(default_factory=dict)
    limit: float | None = None  # an absolute target: the median must be at most this

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def met(self) -> bool | None:
        if self.limit is not None:
            return self.median <= self.limit
        if self.target is None or self.ratio is None:
            return None
        return self.ratio >= self.target


@dataclass
class Settings:
    """Sizes and repeats; ``quick`` shrinks everything to fit about ten minutes."""

    quick: bool = False
    repeats: int = 3
    threads: int | None = None  # torch threads in every worker; None keeps torch's default
    # OMP_WAIT_POLICY forced on every process, ours and the peers' alike; "" leaves libgomp's
    # default.
    omp_wait_policy: str = ""
    only: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        if self.omp_wait_policy:
            env["OMP_WAIT_POLICY"] = self.omp_wait_policy
        if self.threads:
            env["BENCH_TORCH_THREADS"] = str(self.threads)
        return env


def prepare_driver(settings: Settings) -> None:
    """Set the driver's environment (workers inherit it)."""
    os.environ.update(settings.env())


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def compare(
    workload: str,
    contenders: list[Contender],
    cases: list[tuple[str, dict[str, Any], Metric]],
    settings: Settings,
    *,
    baseline: str | None = None,
    targets: dict[tuple[str, str], float] | None = None,
    warmup: dict[str, Any] | None = None,
    repeats: int | None = None,
    extra_keys: tuple[str, ...] = (),
) -> list[Row]:
    """Run every case on every contender, alternating, after one warm-up run each.

    ``baseline`` names the contender each other one's ratio is against (default: the
    last one); ``targets`` maps (contender, case) to the ratio the issue asks for.
    ``warmup`` is a (smaller) case run once per contender before anything is timed.
    """
    repeats = repeats or settings.repeats
    baseline = baseline or contenders[-1].name
    env = settings.env()
    log(f"{workload}: starting {', '.join(c.name for c in contenders)}")
    workers: dict[str, Worker] = {}
    for c in contenders:
        if c.process_key not in workers:
            workers[c.process_key] = Worker(c, env)
    rows: list[Row] = []

    def run_on(contender: Contender, case: dict[str, Any]) -> dict[str, float]:
        return workers[contender.process_key].run({**case, "contender": contender.name})

    try:
        for worker in workers.values():
            worker.ready()
        for contender in contenders:
            run_on(contender, warmup if warmup is not None else cases[0][1])
        for case_name, case, metric in cases:
            runs: dict[str, list[dict[str, float]]] = {c.name: [] for c in contenders}
            for i in range(repeats):
                order = contenders if i % 2 == 0 else contenders[::-1]  # A B, B A, ...
                for contender in order:
                    runs[contender.name].append(run_on(contender, case))
            case_rows = []
            for contender in contenders:
                metrics = runs[contender.name]
                row = Row(
                    workload=workload,
                    case=case_name,
                    contender=contender.name,
                    unit=metric.unit,
                    samples=[metric.value(m) for m in metrics],
                    higher_is_better=metric.higher_is_better,
                    peak_mib=max(m["peak_mib"] for m in metrics),
                    extra={
                        k: statistics.median(m[k] for m in metrics)
                        for k in extra_keys
                        if all(k in m for m in metrics)
                    },
                )
                case_rows.append(row)
            base = next(r for r in case_rows if r.contender == baseline)
            for row in case_rows:
                if row is base:
                    continue
                row.baseline = baseline
                if row.higher_is_better:
                    row.ratio = row.median / base.median
                else:
                    row.ratio = base.median / row.median
                row.target = (targets or {}).get((row.contender, case_name))
            for row in case_rows:
                log(
                    f"  {case_name:<34} {row.contender:<32} {_fmt(row.median)} {row.unit}"
                    + (f"  ratio {row.ratio:.2f}x" if row.ratio is not None else "")
                )
            rows.extend(case_rows)
    finally:
        for worker in workers.values():
            worker.close()
    return rows


def ratio_row(
    workload: str,
    case: str,
    contender: str,
    baseline_name: str,
    ours: list[float],
    theirs: list[float],
    unit: str,
    higher_is_better: bool,
    target: float | None,
    peak_mib: float = float("nan"),
) -> list[Row]:
    """Rows for figures measured outside ``compare`` (for example in fresh processes)."""
    base = Row(workload, case, baseline_name, unit, theirs, higher_is_better, peak_mib)
    row = Row(workload, case, contender, unit, ours, higher_is_better, peak_mib, baseline_name)
    if higher_is_better:
        row.ratio = row.median / base.median
    else:
        row.ratio = base.median / row.median
    row.target = target
    return [row, base]


# ---- output ----


def _fmt(value: float) -> str:
    if value != value:  # nan
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| workload | case | contender | median | min | max | unit | ratio | target "
        "| peak RSS MiB |",
        "|---|---|---|---:|---:|---:|---|---:|---|---:|",
    ]
    for r in rows:
        ratio = f"**{r.ratio:.2f}x** vs {r.baseline}" if r.ratio is not None else ""
        target = ""
        if r.target is not None:
            target = f">= {r.target:g}x {'met' if r.met else 'NOT met'}"
        elif r.limit is not None:
            target = f"<= {r.limit:g} {r.unit.split()[0]} {'met' if r.met else 'NOT met'}"
        lines.append(
            f"| {r.workload} | {r.case} | {r.contender} | {_fmt(r.median)} "
            f"| {_fmt(min(r.samples))} | {_fmt(max(r.samples))} | {r.unit} | {ratio} | {target} "
            f"| {_fmt(r.peak_mib)} |"
        )
    extras = [r for r in rows if r.extra]
    if extras:
        lines += ["", "| workload | case | contender | figure | value |", "|---|---|---|---|---:|"]
        for r in extras:
            for key, value in r.extra.items():
                lines.append(f"| {r.workload} | {r.case} | {r.contender} | {key} | {_fmt(value)} |")
    return "\n".join(lines)


def chart(rows: list[Row], path: Path, title: str) -> None:
    """One horizontal bar per comparison: the ratio, with its target marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = [r for r in rows if r.ratio is not None]
    if not compared:  # every comparison failed: nothing to draw
        return
    labels = [f"{r.workload}: {r.case}\n{r.contender} vs {r.baseline}" for r in compared]
    height = max(3.0, 0.55 * len(compared) + 1.0)
    fig, ax = plt.subplots(figsize=(11, height))
    colors = ["#999999" if r.met is None else ("#2a9d8f" if r.met else "#e76f51") for r in compared]
    y = range(len(compared))
    ax.barh(list(y), [r.ratio or 0 for r in compared], color=colors)
    for i, r in enumerate(compared):
        ax.text((r.ratio or 0) * 1.02, i, f"{r.ratio:.2f}x", va="center", fontsize=8)
        if r.target is not None:
            ax.plot([r.target, r.target], [i - 0.4, i + 0.4], color="black", linewidth=1.5)
    ax.axvline(1.0, color="#555555", linestyle=":", linewidth=1)
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    marks = [r.ratio or 1.0 for r in compared] + [r.target for r in compared if r.target]
    ax.set_xlim(min(0.5, min(marks) * 0.8), max(2.0, max(marks) * 1.6))
    ticks = [t for t in (0.25, 0.5, 1, 2, 5, 10, 20, 50, 100) if 0.8 * min(marks) <= t]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}x" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("ratio (x better than the baseline; black tick = target; log scale)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(rows: list[Row], header: str, stem: str, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / f"{stem}.md"
    png = directory / f"{stem}.png"
    body = f"{header}\n\n{markdown_table(rows)}\n\n![ratios]({png.name})\n"
    md.write_text(body)
    (directory / f"{stem}.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    chart(rows, png, header.splitlines()[0].lstrip("# "))
    return md


def also_against(
    rows: list[Row], contender: str, baseline: str, targets: dict[str, float] | None = None
) -> list[Row]:
    """Extra rows: ``contender`` against a second ``baseline``, from the same runs, per case."""
    extra: list[Row] = []
    for case in dict.fromkeys(r.case for r in rows):
        ours = next(r for r in rows if r.case == case and r.contender == contender)
        base = next(r for r in rows if r.case == case and r.contender == baseline)
        if ours.higher_is_better:
            ratio = ours.median / base.median
        else:
            ratio = base.median / ours.median
        extra.append(
            Row(
                ours.workload,
                case,
                contender,
                ours.unit,
                ours.samples,
                ours.higher_is_better,
                ours.peak_mib,
                baseline,
                ratio,
                (targets or {}).get(case),
            )
        )
        base.baseline, base.ratio = None, None  # shown as a baseline, not a contender
    return extra
