"""Cheap check for an RNGD NPU: no furiosa-llm import unless its native module exists."""

from __future__ import annotations

import functools
import importlib.util


@functools.cache
def npu_available() -> bool:
    """True when furiosa-llm's native engine is installed and an NPU is present."""
    try:
        if importlib.util.find_spec("furiosa.llm_native") is None:
            return False
    except (ImportError, ValueError):  # parent package `furiosa` missing
        return False
    try:
        import furiosa_smi  # type: ignore[import-not-found]

        return len(furiosa_smi.list_devices()) > 0
    except Exception:
        return False
