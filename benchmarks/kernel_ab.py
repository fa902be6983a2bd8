"""A/B two versions of the ``grouped_linear`` kernel in one process, on the default model.

These 2-core hosts drift by up to 1.5x between processes and minutes, so two kernel
builds timed in separate runs tell little. Here the installed kernel (A, built as usual)
and another version of ``grouped_linear.cpp`` (B, compiled with the same flags into the op
namespace ``furiosa_b``) run in one process, alternating call by call over many rounds,
on the default model's own groups (a layer's q/k/v, gate/up and down, and the LM head).
B must give the same bits as A on every shape (a kernel change may not move outputs),
else the tool stops. Prints each shape's median time for A and B, and B/A.

    .venv/bin/python -m benchmarks.kernel_ab path/to/other/grouped_linear.cpp [--rows 1,16,64]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

_NAMESPACE = "furiosa_b"


def build_variant(source: Path, workdir: Path) -> Path:
    """``source`` compiled as this machine's kernels are, registering ``furiosa_b::grouped_linear``
    (its other ops left out)."""
    from furiosa_integrations.backends.torch.kernels import build

    text = source.read_text()
    marker = "TORCH_LIBRARY_IMPL(furiosa, CPU, m)"
    if marker not in text:
        raise SystemExit(f"{source}: no `{marker}` block to rename")
    text = text.replace(marker, f"TORCH_LIBRARY_IMPL({_NAMESPACE}, CPU, m)")
    text = text.replace('m.impl("find_groups", find_groups);', "")
    kernels = Path(build.__file__).parent
    for header in build.HEADERS:  # the variant may include them
        shutil.copy(kernels / header, workdir / header)
    variant = workdir / "grouped_linear.cpp"
    variant.write_text(text)
    compiler = build.find_compiler() or "g++"
    obj, library = workdir / "grouped_linear.o", workdir / "variant.so"
    subprocess.run(
        [compiler, *build.compiler_flags(), "-c", str(variant), "-o", str(obj)], check=True
    )
    subprocess.run(build.link_command(compiler, [obj], library), check=True)
    return library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the other grouped_linear.cpp (B)")
    parser.add_argument("--rows", default="1,16,64", help="input rows (batch sizes) to time")
    parser.add_argument("--rounds", type=int, default=60, help="alternations per shape")
    parser.add_argument("--layer", type=int, default=3, help="which layer's weights")
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
    library = torch.library.Library(_NAMESPACE, "DEF")  # held while the ops are used
    library.define(SCHEMA)
    with tempfile.TemporaryDirectory(prefix="kernel-ab-") as tmp:
        torch.ops.load_library(str(build_variant(args.source, Path(tmp))))
    path = resolve_model(None, "generate").path
    model = load_decoder(
        path, read_config(path), torch.device("cpu"), torch.float32, 64, True
    ).model
    layer = model.layers[args.layer]
    weights = {"qkv": layer.qkv, "up": layer.up, "down": layer.down, "lm_head": model.lm_head}
    ops = {"A": torch.ops.furiosa.grouped_linear, "B": torch.ops.furiosa_b.grouped_linear}
    torch.manual_seed(0)
    print("| rows | weight | A ms | B ms | B/A |\n|---:|---|---:|---:|---:|")
    for rows in (int(r) for r in args.rows.split(",")):
        for name, weight in weights.items():
            assert isinstance(weight, GroupedWeight), f"{name} is not in GGUF groups here"
            x = torch.randn(rows, weight_shape(weight)[1])
            call = (x, weight.codes, weight.scales, weight.mins, weight.activation_bits)
            if not torch.equal(ops["A"](*call), ops["B"](*call)):
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
