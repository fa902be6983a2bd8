"""Find GGUF's grouped quantization in weights that were dequantized from it.

A GGUF model reaches the engine as fp32 tensors (``models.gguf_cache`` converts it once
with transformers, which dequantizes every tensor). Those values still lie exactly on
each group's grid: ``Q4_1`` gives ``d * q + m`` for 4-bit ``q`` with fp16 ``d`` and ``m``
per group of 32 inputs (the group's smallest value is ``m`` itself), ``Q8_0`` gives
``d * q`` for 8-bit ``q`` (the largest magnitude is ``127 * d``). The native kernel
library recovers ``q``, ``d`` and ``m`` in one pass (~0.1 s for a 135M-parameter model)
and keeps them only if they give back every value bit for bit, so
``kernels.grouped_linear`` multiplies exactly the weights the model was given, from a
quarter (Q4_1) or about half (Q8_0) of fp16's bytes. Row permutations and concatenations
(transformers' un-permuted q/k rows, our fused qkv and gate/up) keep the groups intact.
Weights of any other origin find no grid and keep their other packing.
"""

from __future__ import annotations

import torch

from .kernels.grouped_linear import GROUP, GroupedWeight, native_kernel_loaded


def find_groups(weight: torch.Tensor, activation_bits: int = 16) -> GroupedWeight | None:
    """``weight`` ``[N, K]`` as Q4_1 or Q8_0 groups if it lies exactly on their grid
    (``None`` also where the native kernels are not built), to multiply inputs quantized to
    ``activation_bits`` per group (``kernels.grouped_linear``)."""
    # the kernel takes a row's groups in pairs: an odd count keeps the other packing
    if weight.dim() != 2 or weight.shape[1] % (2 * GROUP) or weight.dtype != torch.float32:
        return None
    if weight.device.type != "cpu" or not native_kernel_loaded():
        return None
    for bits in (4, 8):
        found = torch.ops.furiosa.find_groups(weight, bits)
        if found:
            codes, scales, mins = found
            return GroupedWeight(codes, scales, mins, activation_bits)
    return None
