"""The kernels cache keeps the builds in use and removes the ones left behind: a build
directory per source, torch, compiler and CPU, each new build pruning the builds no
process has loaded for a day beyond the most recent few."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pytest

from furiosa_integrations.backends.torch.kernels import build


def _make_build(root: Path, name: str, last_used: float) -> Path:
    entry = root / name
    entry.mkdir()
    library = entry / build.LIBRARY
    library.write_bytes(b"\x7fELF stand-in bytes")  # only its presence and time matter here
    os.utime(library, (last_used, last_used))
    return entry


def test_prune_keeps_the_builds_loaded_last_however_old(tmp_path: Path) -> None:
    now, day = time.time(), 24 * 3600
    recent = [
        _make_build(tmp_path, f"recent-{i}", now - 30 * day - i) for i in range(build.KEEP_BUILDS)
    ]
    stale = [_make_build(tmp_path, f"stale-{i}", now - 40 * day - i) for i in range(3)]
    in_progress = tmp_path / "in-progress"  # a build under way has no library yet
    in_progress.mkdir()
    (in_progress / "grouped_linear.o").write_bytes(b"")

    removed = build.prune_builds(tmp_path, now=now)

    assert sorted(removed) == sorted(stale)
    assert all(entry.is_dir() for entry in [*recent, in_progress])
    assert not any(entry.exists() for entry in stale)
    assert build.prune_builds(tmp_path, now=now) == []  # nothing left to remove


def test_prune_keeps_every_build_loaded_within_a_day(tmp_path: Path) -> None:
    now = time.time()
    today = [
        _make_build(tmp_path, f"today-{i}", now - 600 * i) for i in range(build.KEEP_BUILDS + 3)
    ]
    assert build.prune_builds(tmp_path, now=now) == []
    assert all(entry.is_dir() for entry in today)
    # a day later the oldest three are beyond the KEEP_BUILDS loaded last and unused since
    later = now + build.UNUSED_FOR + 1
    assert sorted(build.prune_builds(tmp_path, now=later)) == sorted(today[-3:])


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86 kernels")
@pytest.mark.skipif(build.find_compiler() is None, reason="no C++ compiler")
def test_loading_the_kernels_marks_their_build_as_used() -> None:
    assert build.load(), "the native CPU kernels did not build here (see the log)"
    compiler = build.find_compiler()
    assert compiler is not None
    library = build.library_path(compiler)
    long_ago = time.time() - 90 * 24 * 3600
    os.utime(library, (long_ago, long_ago))
    build._loaded = None  # load again, as a new process would (the library is loaded once)
    assert build.load()
    assert library.stat().st_mtime > time.time() - 600
