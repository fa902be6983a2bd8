"""Linear layers through CPU kernels that read a weight packed once at load.

Three packings, each replacing the plain weight (no second copy), dispatched by ``linear``:

- oneDNN's layout for fp32/bf16 weights (``pack``). torch's default CPU GEMM (MKL) is
  slow on some CPUs at the few rows of a decode step and at an encoder batch's rows too.
  Measured on this project's 2-core AMD EPYC (Zen 4, no AMX), 3072x576 fp32 weights out
  of DRAM: ``F.linear`` 9.3 GB/s at one row and 5.3 GB/s at 16; oneDNN's matmul on a
  weight packed for 16 rows 19.4 GB/s and 14.5 GB/s. MiniLM's 1536x384 at 256 rows: 3.2x
  faster. Results agree with ``F.linear`` to ~1e-7 relative (a different summation order).
- fbgemm's fp16 layout (``pack_fp16``): the weight is stored in fp16, the input, the
  products and the sums stay fp32. A decode step reads every weight once, so half the
  bytes is most of the step: SmolLM2-135M decodes 1.9x faster at one row than with
  oneDNN fp32 (same greedy tokens on the prompts tried). Its rows are computed
  independently: a row's result is bit-identical at 1 row and at 16.
- GGUF's own 4- and 8-bit groups for a model that came as GGUF (``pack_light`` finds them,
  ``gguf_groups``; ``kernels.grouped_linear``): the exact weights it was given, a quarter to
  a half of fp16's bytes, times activations quantized to 16 bits per group (or, opted in,
  llama.cpp's 8 bits).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

from .gguf_groups import find_groups
from .kernels.grouped_linear import (
    GroupedWeight,
    grouped_linear,
    weight_format,
)

# A layer's weight as ``linear`` takes it: plain, oneDNN-packed (an opaque mkldnn tensor),
# fbgemm-packed fp16 (a ScriptObject) or GGUF's groups.
Weight = torch.Tensor | torch.ScriptObject | GroupedWeight

_PACK_FOR_ROWS = 16  # the oneDNN layout's row hint: as fast as 1 at one row, 1.8x faster at 16
_FP16_MAX = 65504.0


def packing_available(device: torch.device, dtype: torch.dtype) -> bool:
    return device.type == "cpu" and dtype in (torch.float32, torch.bfloat16) and _packs(dtype)


@functools.cache
def _packs(dtype: torch.dtype) -> bool:
    """oneDNN packs ``dtype`` weights on this CPU (bf16 needs AVX512-BF16 or AVX-NE-CONVERT:
    an AVX2-only CPU refuses at packing time)."""
    ops = getattr(torch.ops, "mkldnn", None)
    if not torch.backends.mkldnn.is_available() or ops is None:
        return False
    if not hasattr(ops, "_linear_pointwise"):
        return False
    try:
        pack(torch.ones(8, 8, dtype=dtype))
    except RuntimeError:
        return False
    return True


@functools.cache
def fp16_packing_available() -> bool:
    """fbgemm's fp16 kernels run here (x86 with AVX2; they refuse other CPUs at run time)."""
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        return False
    try:
        packed = torch.ops.quantized.linear_prepack_fp16(torch.ones(8, 8), None)
        torch.ops.quantized.linear_dynamic_fp16(torch.ones(1, 8), packed)
    except (RuntimeError, AttributeError):
        return False
    return True


def pack(weight: torch.Tensor) -> torch.Tensor:
    """The weight in oneDNN's packed layout, to use in its place with ``linear``."""
    return torch.ops.mkldnn._reorder_linear_weight(weight, _PACK_FOR_ROWS)  # type: ignore[no-any-return]


def pack_fp16(weight: torch.Tensor) -> Weight:
    """An fp32 weight stored as fbgemm's packed fp16, to use with fp32 inputs in ``linear``.

    A weight with values past fp16's range keeps fp32 (oneDNN-packed): rounding it would
    saturate, and one such layer is not worth a wrong answer.
    """
    if not _fits_fp16(weight):
        return pack(weight)
    return torch.ops.quantized.linear_prepack_fp16(weight.float(), None)


GGUF_WEIGHTS_VARIABLE = "FURIOSA_GGUF_WEIGHTS"
_GGUF_ACTIVATION_BITS = {"1": 16, "int8": 8}


def gguf_activation_bits() -> int | None:
    """How ``pack_light`` multiplies a GGUF model's own groups, from ``FURIOSA_GGUF_WEIGHTS``:
    unset or ``1``: activations quantized to 16 bits per group (the default); ``int8``:
    llama.cpp's 8 bits (opt-in); ``0``: not at all (the weights go to fp16)."""
    value = os.environ.get(GGUF_WEIGHTS_VARIABLE, "1").strip().lower()
    if value == "0":
        return None
    if value not in _GGUF_ACTIVATION_BITS:
        raise ValueError(f"{GGUF_WEIGHTS_VARIABLE}={value!r}: expected 1, int8 or 0")
    return _GGUF_ACTIVATION_BITS[value]


def pack_light(weight: torch.Tensor, activation_bits: int | None) -> Weight:
    """A fp32 weight in GGUF's own groups when it lies exactly on them (a model that came as
    GGUF), ``activation_bits`` is set (``gguf_activation_bits``) and our kernels build here;
    else as fbgemm's fp16 (``pack_fp16``).

    The groups decode faster (a quarter of fp16's bytes, integer dots) times activations
    quantized per group of 32 to 16 bits: the default model's logits move by ~0.01 from
    fp32's (fp16 weights move them more), and the decoder then attends every row on its own
    too (``kernels.cache_attention``), so greedy outputs stay batch invariant bit for bit.
    ``FURIOSA_GGUF_WEIGHTS=int8`` takes llama.cpp's 8-bit activations instead, faster still
    but opt-in: they move the default model's logits by ~2 (of ~25), enough to change its
    answers where fp32's top two are close (as llama.cpp's do). ``=0`` keeps fp16.
    """
    if activation_bits is not None:
        groups = find_groups(weight, activation_bits)
        if groups is not None:
            return groups
    return pack_fp16(weight)


def _fits_fp16(weight: torch.Tensor) -> bool:
    low, high = torch.aminmax(weight)
    return max(-low.item(), high.item()) <= _FP16_MAX


def pack_all(
    weights: Sequence[torch.Tensor], packer: Callable[[torch.Tensor], Weight]
) -> list[Weight]:
    """``packer`` over every weight, on every core: fbgemm's fp16 packing is a single-threaded
    loop (~1.3 s for a 135M-parameter model on one core) and it releases the GIL. Largest
    first, so a big LM head is not left to one core at the end."""
    workers = max(1, min(len(weights), len(os.sched_getaffinity(0))))
    order = sorted(range(len(weights)), key=lambda i: -weights[i].numel())
    with ThreadPoolExecutor(workers, thread_name_prefix="furiosa-pack") as pool:
        packed = dict(zip(order, pool.map(packer, [weights[i] for i in order]), strict=True))
    return [packed[i] for i in range(len(weights))]


def describe_weights(weights: Sequence[Weight]) -> str:
    """How ``weights`` are stored, for the load log: ``"fp16 x121"``,
    ``"Q4_1 x120, Q8_0 x1 (16-bit activations)"``."""
    kinds: dict[str, int] = {}
    activations: set[int] = set()
    for weight in weights:
        if isinstance(weight, GroupedWeight):
            kind = weight_format(weight)
            activations.add(weight.activation_bits)
        elif isinstance(weight, torch.Tensor):
            kind = "fp32" if weight.dtype == torch.float32 else str(weight.dtype)[6:]
        else:
            kind = "fp16"
        kinds[kind] = kinds.get(kind, 0) + 1
    described = ", ".join(f"{kind} x{count}" for kind, count in kinds.items())
    if activations:
        described += f" ({'/'.join(f'{bits}-bit' for bits in sorted(activations))} activations)"
    return described


def linear(x: torch.Tensor, weight: Weight, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear``, through the packed kernel when ``weight`` came from ``pack``/``pack_fp16``."""
    if isinstance(weight, torch.Tensor) and not weight.is_mkldnn:
        return F.linear(x, weight, bias)
    rows = x.reshape(-1, x.shape[-1])  # the packed ops take 2-D input
    if isinstance(weight, GroupedWeight):
        out = grouped_linear(rows, weight, bias)
    elif isinstance(weight, torch.Tensor):
        out = linear_dense(rows, weight, bias)
    else:
        out = linear_fp16(rows, weight, bias)
    return out.reshape(*x.shape[:-1], out.shape[-1])


# The kernels ``linear`` dispatches to, written so TorchScript compiles them too (the
# decoders' ``LayerStack`` calls them from its scripted step; ``grouped_linear`` as well).


def linear_fp16(
    rows: torch.Tensor,
    weight: torch.classes.quantized.LinearPackedParamsBase,  # type: ignore[name-defined]
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """2-D ``rows`` times an fbgemm-packed fp16 weight, in fp32."""
    out = torch.ops.quantized.linear_dynamic_fp16(rows.contiguous(), weight)
    if bias is not None:
        out = out + bias
    return out  # type: ignore[no-any-return]


def linear_dense(
    rows: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """2-D ``rows`` times a plain or oneDNN-packed weight."""
    if not weight.is_mkldnn:
        return F.linear(rows, weight, bias)
    # TorchScript needs the empty list's type: the schema's Scalar?[] (eager: just []).
    no_scalars = torch.jit.annotate(list[int | float | complex | None], [])
    return torch.ops.mkldnn._linear_pointwise(  # type: ignore[no-any-return]
        rows.contiguous(), weight, bias, "none", no_scalars, ""
    )


__all__ = [
    "GroupedWeight",
    "Weight",
    "describe_weights",
    "fp16_packing_available",
    "gguf_activation_bits",
    "grouped_linear",
    "linear",
    "linear_dense",
    "linear_fp16",
    "pack",
    "pack_all",
    "pack_fp16",
    "pack_light",
    "packing_available",
]
