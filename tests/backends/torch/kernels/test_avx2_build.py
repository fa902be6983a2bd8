"""The kernels built for an AVX2-only CPU pass this folder's tests on a newer one.

``grouped_linear.cpp`` keeps a form for CPUs with 32 vector registers (AVX-512) and another
for AVX2's 16. A host with AVX-512 builds only the first, so here this folder's tests run
again in a child process with ``FURIOSA_KERNELS_MARCH=znver3`` (the AVX2-only Zen 3): the
second form, built by the same code path users get, checked by the same assertions. Cached
like any build after the first (~40-60 s on two cores).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from furiosa_integrations.backends.torch.kernels import build


def _host_has_avx512() -> bool:
    return "avx512vl" in build._cpu_flags()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86 kernels")
@pytest.mark.skipif(build.find_compiler() is None, reason="no C++ compiler")
@pytest.mark.skipif(not _host_has_avx512(), reason="the host's own build is AVX2 already")
def test_kernels_built_for_avx2_pass_the_kernel_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(__file__).parent
    tests = sorted(
        str(path) for path in folder.glob("test_*.py") if path.name != Path(__file__).name
    )
    env = {**os.environ, "FURIOSA_KERNELS_MARCH": "znver3"}
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
    summary = child.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, summary
    # the child ran the AVX2 library, not this host's own one
    compiler = build.find_compiler()
    assert compiler is not None
    monkeypatch.delenv("FURIOSA_KERNELS_MARCH", raising=False)
    native = build.library_path(compiler)
    monkeypatch.setenv("FURIOSA_KERNELS_MARCH", "znver3")
    assert build.library_path(compiler) != native
    assert build.library_path(compiler).exists()
