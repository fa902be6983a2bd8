"""Device and dtype choice for the torch engine."""

from __future__ import annotations

import torch


def pick_device(device: str | None) -> torch.device:
    """``None`` / ``"auto"``: CUDA when present, else CPU. Anything else is forced."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available")
    return chosen


def pick_dtype(device: torch.device, dtype: str | torch.dtype | None) -> torch.dtype:
    """fp32 on CPU (fast and exact there), bf16 on CUDA, unless told otherwise."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)  # type: ignore[no-any-return]
