"""A/B two versions of the ``grouped_linear`` kernel in one process, on the default model.

These 2-core hosts drift by up to 1.5x between processes and minutes, so two kernel
builds timed in separate runs tell little. Here the installed kernel (A, built as usual)
and another version of ``grouped_linear.cpp`` (B, compiled with the same flags into the op
namespace ``furiosa_b``) run in one process, alternating call by call over many rounds,
on the default model's own groups (a layer's q/k/v, gate/up and down, and the LM head).
B must give the same bits as A on every shape (a kernel change may not move outputs),
else the tool stops. Prints each shape's median time for A and B, and B/A.

    .venv/bin/python -m benchmarks.kernel_ab path/to/other/grouped_linear.cpp [--rows 1,16,64]

``--baseline other.cpp`` builds A from that source instead of taking the installed kernel, and
``--march znver2`` builds both for another CPU than this one (an AVX2-only target on an
AVX-512 host, say, to see what fewer registers do to a change; the timings are still this
CPU's).

A shape called again and again stays in the caches, so that timing shows the kernel's
arithmetic, not how it streams weights from memory. ``--step`` times, per side, a whole
decode step's linears instead (every layer's four, then the LM head: ~100 MB, more than the
caches hold), as a decode step reads them; that is how prefetching changes show.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def build_variant(source: Path, workdir: Path, namespace: str, march: str | None) -> Path:
    """``source`` compiled as this machine's kernels are (or for ``march``), registering
    ``<namespace>::grouped_linear`` (its other ops left out)."""
    from furiosa_integrations.backends.torch.kernels import build

    text = source.read_text()
    marker = "TORCH_LIBRARY_IMPL(furiosa, CPU, m)"
    if marker not in text:
        raise SystemExit(f"{source}: no `{marker}` block to rename")
    text = text.replace(marker, f"TORCH_LIBRARY_IMPL({namespace}, CPU, m)")
    text = text.replace('m.impl("find_groups", find_groups);', "")
    kernels = Path(build.__file__).parent
    for header in build.HEADERS:  # the variant may include them
        shutil.copy(kernels / header, workdir / header)
    variant = workdir / f"{namespace}.cpp"
    variant.write_text(text)
    compiler = build.find_compiler() or "g++"
    flags = build.compiler_flags()
    if march is not None:
        flags = [f"-march={march}" if flag.startswith("-march=") else flag for flag in flags]
    obj, library = workdir / f"{namespace}.o", workdir / f"{namespace}.so"
    subprocess.run([compiler, *flags, "-c", str(variant), "-o", str(obj)], check=True)
    subprocess.run(build.link_command(compiler, [obj], library), check=True)
    return library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the other grouped_linear.cpp (B)")
    parser.add_argument("--rows", default="1,16,64", help="input rows (batch sizes) to time")
    parser.add_argument("--rounds", type=int, default=60, help="alternations per shape")
    parser.add_argument("--layer", type=int, default=3, help="which layer's weights")
    parser.add_argument("--baseline", type=Path, help="A from this source, not the installed")
    parser.add_argument("--march", help="build A and B for this -march (default: native)")
    parser.add_argument(
        "--step", action="store_true", help="time a whole step's linears, weights from memory"
    )
    parser.add_argument(
        "--new-bits",
        action="store_true",
        help="B changes the results on purpose: report how far from A, instead of stopping",
    )
    args = parser.parse_args()

    import torch

    from furiosa_integrations.backends.torch.decoders import load_decoder
    from furiosa_integrations.backends.torch.kernels.grouped_linear import (
        SCHEMA,
        native_kernel_loaded,
    )
    from furiosa_integrations.backends.torch.loader import read_config
    from furiosa_integrations.models.resolve import resolve_model

    if not native_kernel_loaded():
        raise SystemExit("the native kernels are not built here (x86 with AVX2 and g++)")
    baseline = args.baseline
    if baseline is None and args.march is not None:  # the installed source, for that CPU
        from furiosa_integrations.backends.torch.kernels import build

        baseline = Path(build.__file__).parent / "grouped_linear.cpp"
    builds = {"furiosa_b": args.source} | ({"furiosa_a": baseline} if baseline else {})
    libraries = []  # held while the ops are used
    with tempfile.TemporaryDirectory(prefix="kernel-ab-") as tmp:
        for namespace, source in builds.items():
            libraries.append(torch.library.Library(namespace, "DEF"))
            libraries[-1].define(SCHEMA)
            workdir = Path(tmp) / namespace
            workdir.mkdir()
            torch.ops.load_library(str(build_variant(source, workdir, namespace, args.march)))
    path = resolve_model(None, "generate").path
    decoder: Any = load_decoder(
        path, read_config(path), torch.device("cpu"), torch.float32, 64, True
    )
    model = decoder.model  # the native decoder's weights (not part of the Decoder protocol)
    layer = model.layers[args.layer]
    weights = {"qkv": layer.qkv, "up": layer.up, "down": layer.down, "lm_head": model.lm_head}
    if args.step:  # every layer's linears as one entry, then the head
        linears = [w for one in model.layers for w in (one.qkv, one.o, one.up, one.down)]
        weights = {"all layers": linears, "lm_head": model.lm_head}
    ops = {
        "A": (torch.ops.furiosa_a if baseline else torch.ops.furiosa).grouped_linear,
        "B": torch.ops.furiosa_b.grouped_linear,
    }
    torch.manual_seed(0)
    print("| rows | weight | A ms | B ms | B/A |\n|---:|---|---:|---:|---:|")
    for rows in (int(r) for r in args.rows.split(",")):
        calls = {}
        for name, group in weights.items():
            members = group if isinstance(group, list) else [group]
            calls[name] = [_call(w, name, rows) for w in members]
            for call in calls[name]:
                _check(ops["A"](*call), ops["B"](*call), name, rows, args.new_bits)
        # --step: every round, each side runs the whole step; else shape by shape, call by call
        groups = [calls] if args.step else [{name: batch} for name, batch in calls.items()]
        times: dict[tuple[str, str], list[float]] = {}
        for group in groups:
            times.update(_time(ops, group, args.rounds))
        for name in calls:
            a, b = (statistics.median(times[name, side]) for side in ("A", "B"))
            print(f"| {rows} | {name} | {a * 1e3:.3f} | {b * 1e3:.3f} | {b / a:.3f} |")


def _time(
    ops: dict[str, Any], calls: dict[str, list[tuple[Any, ...]]], rounds: int
) -> dict[tuple[str, str], list[float]]:
    """Each round, A then B (B then A the next): every entry's calls in turn, each entry
    timed as a whole."""
    times: dict[tuple[str, str], list[float]] = {}
    for i in range(rounds):
        for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
            for name, batch in calls.items():
                start = time.perf_counter()
                for call in batch:
                    ops[side](*call)
                times.setdefault((name, side), []).append(time.perf_counter() - start)
    return times


def _call(weight: Any, name: str, rows: int) -> tuple[Any, ...]:
    import torch

    from furiosa_integrations.backends.torch.kernels.grouped_linear import (
        GroupedWeight,
        weight_shape,
    )

    assert isinstance(weight, GroupedWeight), f"{name} is not in GGUF groups here"
    x = torch.randn(rows, weight_shape(weight)[1])
    return (x, weight.codes, weight.scales, weight.mins, weight.activation_bits)


def _check(a_out: Any, b_out: Any, name: str, rows: int, new_bits: bool) -> None:
    """B must give A's bits, unless it changes them on purpose (then: how far)."""
    import torch

    if new_bits:
        far = (a_out - b_out).abs().max().item() / a_out.abs().max().item()
        print(f"<!-- {name}, {rows} rows: B differs from A by up to {far:.1e} of A's largest -->")
    elif not torch.equal(a_out, b_out):
        raise SystemExit(f"B's output differs from A's ({name}, {rows} rows)")


if __name__ == "__main__":
    main()
