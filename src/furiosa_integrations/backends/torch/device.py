"""Device and dtype choice for the torch engine."""

from __future__ import annotations

import torch

from .packed_linear import fp16_packing_available


def pick_device(device: str | None) -> torch.device:
    """``None`` / ``"auto"``: CUDA when present, else CPU. Anything else is forced."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available")
    return chosen


def prepare_device(device: str | None, num_threads: int | None) -> torch.device:
    """Apply the engine's thread count (when given) and choose its device."""
    if num_threads:
        torch.set_num_threads(num_threads)
    return pick_device(device)


def pick_dtype(device: torch.device, dtype: str | torch.dtype | None) -> torch.dtype:
    """fp32 on CPU (fast and exact there), bf16 on CUDA, unless told otherwise."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)  # type: ignore[no-any-return]


def pick_light_weights(device: torch.device, dtype: str | torch.dtype | None) -> bool:
    """Whether a CPU decoder left on the default dtype stores its weights lighter than fp32
    (``packed_linear.pack_light``: a GGUF model's own 4/8-bit groups, else fbgemm's fp16).

    A decode step on the CPU reads every weight once per token: fbgemm's fp16 weights
    with fp32 math halve those bytes (a 1.9x faster decode step at one row), a GGUF's own
    groups take a quarter of them (1.9x faster again at one row on an AVX2 EPYC).
    An explicit ``dtype="float32"`` keeps fp32 weights: exact, and slower.
    """
    return dtype in (None, "auto") and device.type == "cpu" and fp16_packing_available()


def pick_encoder_dtype(device: torch.device, dtype: str | torch.dtype | None) -> torch.dtype:
    """The encoder's matmul dtype: bf16 on CUDA and on CPUs with native bf16 math (AMX or
    AVX512-BF16), else fp32.

    AMX runs bf16 matmuls ~2.5x faster than fp32 (all-MiniLM-L6-v2), AVX512-BF16 (Zen 4)
    1.75x; the encoder keeps LayerNorms and residuals in fp32, so vectors stay within 1e-4
    cosine of the fp32 ones (at most 4.9e-5 over 300 chunks of 20-200 words, measured on
    Zen 4). RNGD computes in bf16 too. ``dtype="float32"`` keeps exact.
    """
    if dtype in (None, "auto"):
        if device.type == "cuda" or (device.type == "cpu" and _cpu_has_native_bf16()):
            return torch.bfloat16
        return torch.float32
    return pick_dtype(device, dtype)


def _cpu_has_native_bf16() -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    # ATen held to an older instruction set (ATEN_CPU_CAPABILITY=avx2) runs this CPU as one
    # without AVX-512, so without its bf16 math either: fp32 is then the faster choice.
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        probe = getattr(torch.cpu, name, None)  # private: absent in some builds
        if probe is not None and probe():
            return True
    return False
