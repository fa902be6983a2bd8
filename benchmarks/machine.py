"""The machine a figure was measured on: CPU model, cores and vector extensions.

Figures differ between machines (AMX makes bf16 matmuls fast, AVX2-only CPUs have no
native bf16 or int8 dot products), so every results table names them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The extensions that change which kernels are fast, in the order worth naming.
_EXTENSIONS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "avx_vnni",
    "amx_bf16",
    "amx_int8",
)


def describe_cpu() -> str:
    """E.g. ``AMD EPYC, 2 cores, avx2 fma avx512f avx512_bf16 avx512_vnni (no AMX)``."""
    model, flags = platform.processor() or platform.machine(), set[str]()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), "x86_64"):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    present = [name for name in _EXTENSIONS if name in flags]
    amx = "" if any(name.startswith("amx") for name in present) else " (no AMX)"
    return f"{model}, {os.cpu_count()} cores, {' '.join(present) or 'no AVX2'}{amx}{_forced()}"


# Settings that make this CPU run an older one's code (e.g. AVX2 only on an AVX-512 CPU).
_NARROWING = ("FURIOSA_KERNELS_MARCH", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


def _forced() -> str:
    """``; code forced: ...`` where the run narrowed the instruction set, else nothing."""
    forced = [f"{name}={os.environ[name]}" for name in _NARROWING if os.environ.get(name)]
    return f"; code forced: {' '.join(forced)}" if forced else ""


__all__ = ["describe_cpu"]
