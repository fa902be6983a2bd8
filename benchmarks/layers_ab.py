"""A decode step's layers, old source against new, in one process: ``furiosa::decode_layers``.

    .venv/bin/python -m benchmarks.layers_ab OLD/kernels/ [--rows 1,16] [--rounds 300]

Builds every kernel source of the ``OLD`` kernels folder (a worktree's
``src/furiosa_integrations/backends/torch/kernels``) into a library whose ops live in the
``furiosa_a`` namespace (C++ namespace renamed too), then runs its ``decode_layers`` (A) and
the installed one (B) alternately on the default model's weights and a 100-token cache,
checking they give the same bits. Where ``kernel_ab`` times the linears alone, this times
what lies around them (norms, RoPE, attention, skip connections). Honours
``FURIOSA_KERNELS_MARCH`` for both sides.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

SCHEMAS = (
    "decode_layers(Tensor hidden, Tensor[] cos, Tensor[] sin, Tensor(a!) keys, "
    "Tensor(b!) values, Tensor slots, Tensor positions, Tensor[] codes, Tensor[] scales, "
    "Tensor[] mins, int[] activation_bits, Tensor[] norms, int[] rope_index, int[] windows, "
    "float[] attention_scales, float softcap, float eps, int heads, int kv_heads) -> Tensor",
)


def build_old(folder: Path, workdir: Path) -> Path:
    """``folder``'s kernels as one library registering ``furiosa_a::`` ops."""
    from furiosa_integrations.backends.torch.kernels import build

    for name in build.SOURCES + build.HEADERS:
        text = (folder / name).read_text()
        text = text.replace(
            "TORCH_LIBRARY_IMPL(furiosa, CPU, m)", "TORCH_LIBRARY_IMPL(furiosa_a, CPU, m)"
        )
        (workdir / name).write_text(re.sub(r"\bfuriosa_kernels\b", "furiosa_kernels_a", text))
    compiler = build.find_compiler() or "g++"
    objects = [workdir / f"{name}.o" for name in build.SOURCES]
    for name, obj in zip(build.SOURCES, objects, strict=True):
        command = [compiler, *build.compiler_flags(), "-c", str(workdir / name), "-o", str(obj)]
        subprocess.run(command, check=True)
    library = workdir / "furiosa_a.so"
    subprocess.run(build.link_command(compiler, objects, library), check=True)
    return library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the old kernels folder")
    parser.add_argument("--rows", default="1,16", help="decode rows (batch sizes) to time")
    parser.add_argument("--rounds", type=int, default=300, help="alternations per size")
    args = parser.parse_args()

    import torch

    from furiosa_integrations.backends.torch.decoders import PrefillSegment, load_decoder
    from furiosa_integrations.backends.torch.kernels import build
    from furiosa_integrations.backends.torch.kernels import decode_layers as _  # noqa: F401
    from furiosa_integrations.backends.torch.loader import read_config
    from furiosa_integrations.models.resolve import resolve_model

    if not build.load():
        raise SystemExit("the native kernels are not built here (x86 with AVX2 and g++)")
    library = torch.library.Library("furiosa_a", "DEF")  # held while the ops are used
    for schema in SCHEMAS:
        library.define(schema)
    with tempfile.TemporaryDirectory(prefix="layers-ab-") as tmp:
        torch.ops.load_library(str(build_old(args.old, Path(tmp))))
    path = resolve_model(None, "generate").path
    decoder: Any = load_decoder(
        path, read_config(path), torch.device("cpu"), torch.float32, 2048, True
    )
    stack, context = decoder.layers, 100
    ops = {"A": torch.ops.furiosa_a.decode_layers, "B": torch.ops.furiosa.decode_layers}
    print("| rows | A ms | B ms | B/A |\n|---:|---:|---:|---:|")
    for rows in (int(r) for r in args.rows.split(",")):
        decoder.cache.ensure(rows, context + 1)
        prompt = torch.randint(0, 1000, (context,))
        for slot in range(rows):
            decoder.prefill(
                prompt, [PrefillSegment(slot=slot, start=0, length=context, position=0)]
            )
        positions = torch.full((rows,), context)
        cos, sin = decoder.rotary(positions)
        hidden = torch.randn(rows, decoder.model.embed.shape[1])
        call = (
            hidden,
            cos,
            sin,
            decoder.cache.keys,
            decoder.cache.values,
            torch.arange(rows),
            positions,
            stack.fused_codes,
            stack.fused_scales,
            stack.fused_mins,
            stack.fused_bits,
            stack.fused_norms,
            stack.rope_index,
            stack.window_sizes,
            stack.attention_scales,
            0.0,
            stack.eps,
            stack.num_heads,
            stack.num_kv_heads,
        )
        times: dict[str, list[float]] = {"A": [], "B": []}
        with torch.inference_mode():
            if not torch.equal(ops["A"](*call), ops["B"](*call)):
                raise SystemExit(f"{rows} rows: B does not give A's bits")
            for i in range(args.rounds):
                for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    start = time.perf_counter()
                    ops[side](*call)
                    times[side].append(time.perf_counter() - start)
        a, b = (statistics.median(times[side]) for side in ("A", "B"))
        print(f"| {rows} | {a * 1e3:.3f} | {b * 1e3:.3f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
