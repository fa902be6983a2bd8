"""Linear layers through CPU kernels that read a weight packed once at load.

Two packings, each replacing the plain weight (no second copy), dispatched by ``linear``:

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
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

# A layer's weight as ``linear`` takes it: plain, oneDNN-packed (an opaque mkldnn tensor)
# or fbgemm-packed fp16 (a ScriptObject).
Weight = torch.Tensor | torch.ScriptObject

_PACK_FOR_ROWS = 16  # the oneDNN layout's row hint: as fast as 1 at one row, 1.8x faster at 16
_FP16_MAX = 65504.0


def packing_available(device: torch.device, dtype: torch.dtype) -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    return (
        device.type == "cpu"
        and dtype in (torch.float32, torch.bfloat16)
        and torch.backends.mkldnn.is_available()
        and ops is not None
        and hasattr(ops, "_linear_pointwise")
    )


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
    low, high = torch.aminmax(weight)
    if max(-low.item(), high.item()) > _FP16_MAX:
        return pack(weight)
    return torch.ops.quantized.linear_prepack_fp16(weight.float(), None)


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


def linear(x: torch.Tensor, weight: Weight, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear``, through the packed kernel when ``weight`` came from ``pack``/``pack_fp16``."""
    if isinstance(weight, torch.Tensor) and not weight.is_mkldnn:
        return F.linear(x, weight, bias)
    rows = x.reshape(-1, x.shape[-1])  # the packed ops take 2-D input
    if isinstance(weight, torch.Tensor):
        out = linear_dense(rows, weight, bias)
    else:
        out = linear_fp16(rows, weight, bias)
    return out.reshape(*x.shape[:-1], out.shape[-1])


# The two kernels ``linear`` dispatches to, written so TorchScript compiles them too (the
# decoders' ``LayerStack`` calls them from its scripted step).


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
    "Weight",
    "fp16_packing_available",
    "linear",
    "linear_dense",
    "linear_fp16",
    "pack",
    "pack_all",
    "pack_fp16",
    "packing_available",
]
