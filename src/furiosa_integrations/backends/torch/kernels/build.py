"""Compile this folder's C++ kernels once per machine and torch version, and load them.

The library is built with the machine's own C++ compiler for the machine's own CPU
(``-march=native``) against the installed torch's headers, the first time a model needs
it (one compiler per source at once: ~20-40 s on two cores; logged), and cached beside the
converted GGUF models. Later loads take milliseconds. Without a compiler, on a CPU without
AVX2/FMA/F16C, or when the build fails, ``load`` returns False (logged once) and the callers
keep their other kernels (a GGUF model then gets fp16 weights).
``FURIOSA_NATIVE_KERNELS=0`` turns the native kernels off. ``FURIOSA_KERNELS_MARCH`` builds
them for another CPU than this one (gcc's ``-march=`` name, e.g. ``znver3`` or ``x86-64-v3``
for AVX2 only; default ``native``): for a cache shared with older machines, or to measure an
AVX2-only CPU's code on a newer one.

Each build has its own directory (a new source, torch, compiler or CPU makes a new one).
After a build, ``prune_builds`` removes the ones no process has loaded for a day, beyond the
``KEEP_BUILDS`` used last: an upgrade would otherwise leave every older build behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import torch
from filelock import FileLock

from ....models.gguf_cache import default_cache_dir

logger = logging.getLogger(__name__)

SOURCES = (
    "grouped_linear.cpp",
    "cache_attention.cpp",
    "rms_norm.cpp",
    "layer_ops.cpp",
    "decode_layers.cpp",
    "row_argmax.cpp",
)
HEADERS = ("vector_math.h", "layer_kernels.h")
_REQUIRED_CPU_FLAGS = ("avx2", "fma", "f16c")
LIBRARY = "furiosa_kernels.so"
# Kept by `prune_builds` whatever their age: the builds loaded last (other torch versions or
# CPUs sharing the cache, a downgrade), and any loaded within UNUSED_FOR seconds.
KEEP_BUILDS = 8
UNUSED_FOR = 24 * 3600

_lock = threading.Lock()
_loaded: bool | None = None  # None: not tried yet


def load() -> bool:
    """Whether the native kernels are loaded into torch (building them on first use)."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _build_and_load()
        return _loaded


def _build_and_load() -> bool:
    if os.environ.get("FURIOSA_NATIVE_KERNELS", "1") == "0":
        logger.info("native kernels off (FURIOSA_NATIVE_KERNELS=0)")
        return False
    flags = _cpu_flags()
    missing = [flag for flag in _REQUIRED_CPU_FLAGS if flag not in flags]
    compiler = find_compiler()
    if platform.machine() not in ("x86_64", "AMD64") or missing or compiler is None:
        reason = f"CPU lacks {missing}" if missing else "no C++ compiler found"
        if platform.machine() not in ("x86_64", "AMD64"):
            reason = f"{platform.machine()} CPU"
        logger.info("native kernels unavailable (%s); using torch's kernels", reason)
        return False
    target = library_path(compiler)
    try:
        built = not target.exists()
        if built:
            _build(compiler, [Path(__file__).parent / name for name in SOURCES], target)
        torch.ops.load_library(str(target))
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        logger.warning("native kernels could not be built or loaded (%s); using torch's", error)
        return False
    with contextlib.suppress(OSError):  # a read-only cache is not pruned: it stays as it is
        os.utime(target)  # its last use, for prune_builds
    if built:
        prune_builds(target.parent.parent)
    return True


def prune_builds(root: Path, now: float | None = None) -> list[Path]:
    """Remove the builds under ``root`` (one directory each) that no process has loaded
    for ``UNUSED_FOR`` seconds, beyond the ``KEEP_BUILDS`` loaded last (a library's
    modification time is its last load). Directories without a library (a build in
    progress, or not ours) are left alone. Returns what it removed."""
    now = time.time() if now is None else now
    builds = []
    for entry in root.iterdir():
        try:
            builds.append((os.stat(entry / LIBRARY).st_mtime, entry))
        except OSError:  # no library: in progress or not a build
            continue
    builds.sort(reverse=True)
    removed = []
    for last_used, entry in builds[KEEP_BUILDS:]:
        if now - last_used > UNUSED_FOR:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        logger.info("Removed %d kernel build(s) unused for a day from %s", len(removed), root)
    return removed


def library_path(compiler: str) -> Path:
    """Where the library built from these sources, for this torch, compiler and target CPU
    is cached."""
    here = Path(__file__).parent
    source_text = b"".join((here / name).read_bytes() for name in SOURCES + HEADERS)
    key = hashlib.sha256(
        source_text
        + torch.__version__.encode()
        + compiler.encode()
        + " ".join(_cpu_flags()).encode()
        + target_cpu().encode()
    ).hexdigest()[:16]
    return default_cache_dir() / "kernels" / key / LIBRARY


def _build(compiler: str, sources: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists():  # another process built it while we waited
            return
        logger.warning(
            "Compiling furiosa-integrations' CPU kernels once (-march=%s) into %s "
            "(~20-40 s; cached after)",
            target_cpu(),
            target.parent,
        )
        compile_flags = compiler_flags()
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            objects = [Path(tmp) / f"{source.stem}.o" for source in sources]
            # one compiler per source, at once: most of the build is parsing torch's headers
            _run_all(
                [
                    [compiler, *compile_flags, "-c", str(source), "-o", str(obj)]
                    for source, obj in zip(sources, objects, strict=True)
                ],
                compiler,
            )
            built = Path(tmp) / target.name
            _run_all([link_command(compiler, objects, built)], compiler)
            os.replace(built, target)  # appears only once complete


def find_compiler() -> str | None:
    """``$CXX``, else g++, where it is on the PATH."""
    return shutil.which(os.environ.get("CXX", "g++"))


def compiler_flags() -> list[str]:
    """How every kernel source is compiled: for this CPU, against the installed torch."""
    include = Path(torch.__file__).parent / "include"
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    return [
        "-O3",
        f"-march={target_cpu()}",
        "-fopenmp",  # torch's own OpenMP runtime serves at::parallel_for at run time
        "-fPIC",
        "-std=c++17",
        "-w",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        f"-I{include}",
        f"-I{include / 'torch' / 'csrc' / 'api' / 'include'}",
    ]


def target_cpu() -> str:
    """The CPU the kernels are compiled for: ``$FURIOSA_KERNELS_MARCH``, else this one."""
    return os.environ.get("FURIOSA_KERNELS_MARCH", "native")


def link_command(compiler: str, objects: list[Path], output: Path) -> list[str]:
    """A shared library of ``objects`` that finds the installed torch's libraries."""
    lib = Path(torch.__file__).parent / "lib"
    libraries = [f"-L{lib}", "-lc10", "-ltorch_cpu", f"-Wl,-rpath,{lib}"]
    return [compiler, "-shared", "-fopenmp", *map(str, objects), "-o", str(output), *libraries]


def _run_all(commands: list[list[str]], compiler: str) -> None:
    running = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command in commands
    ]
    errors = []
    for process in running:
        _, stderr = process.communicate()
        if process.returncode != 0:
            errors.append(stderr.strip()[-2000:])
    if errors:
        raise RuntimeError(f"{compiler} failed: {errors[0]}")


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return sorted(set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return []
