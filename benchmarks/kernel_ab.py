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
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


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
        flags = [f"-march={march}" if flag == "-march=native" else flag for flag in flags]
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
        "--new-bits",
        action="store_true",
        help="B changes the results on purpose: report how far from A, instead of stopping",
    )
    args = parser.parse_args()

    import torch

    from furiosa_integrations.backends.torch.decoders import load_decoder
    from furiosa_integrations.backends.torch.kernels.grouped_linear import (
        SCHEMA,
        GroupedWeight,
        native_kernel_loaded,
        weight_shape,
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
    model = load_decoder(
        path, read_config(path), torch.device("cpu"), torch.float32, 64, True
    ).model
    layer = model.layers[args.layer]
    weights = {"qkv": layer.qkv, "up": layer.up, "down": layer.down, "lm_head": model.lm_head}
    ops = {
        "A": (torch.ops.furiosa_a if baseline else torch.ops.furiosa).grouped_linear,
        "B": torch.ops.furiosa_b.grouped_linear,
    }
    torch.manual_seed(0)
    print("| rows | weight | A ms | B ms | B/A |\n|---:|---|---:|---:|---:|")
    for rows in (int(r) for r in args.rows.split(",")):
        for name, weight in weights.items():
            assert isinstance(weight, GroupedWeight), f"{name} is not in GGUF groups here"
            x = torch.randn(rows, weight_shape(weight)[1])
            call = (x, weight.codes, weight.scales, weight.mins, weight.activation_bits)
            a_out, b_out = ops["A"](*call), ops["B"](*call)
            if args.new_bits:
                scale = a_out.abs().max().item()
                far = (a_out - b_out).abs().max().item() / scale
                log = f"B differs from A by up to {far:.1e} of A's largest output"
                print(f"<!-- {name}, {rows} rows: {log} -->")
            elif not torch.equal(a_out, b_out):
                raise SystemExit(f"B's output differs from A's ({name}, {rows} rows)")
            times: dict[str, list[float]] = {"A": [], "B": []}
            for i in range(args.rounds):
                for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    start = time.perf_counter()
                    ops[side](*call)
                    times[side].append(time.perf_counter() - start)
            a, b = (statistics.median(times[side]) for side in ("A", "B"))
            print(f"| {rows} | {name} | {a * 1e3:.3f} | {b * 1e3:.3f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
