"""``furiosa::grouped_linear``: a linear layer over weights stored in GGUF's groups.

A GGUF model's weights come in groups of 32 along the input: ``Q4_1`` stores 4-bit codes
``q`` with an fp16 scale ``d`` and minimum ``m`` per group (weight ``d * q + m``), ``Q8_0``
8-bit signed codes with a scale (``d * q``). The op takes them as they are: ``codes``
``[N, K/2]`` uint8 (two 4-bit codes a byte: element ``j`` of a group in the low nibble
of byte ``j``, element ``j + 16`` in the high one) or ``[N, K]`` int8, ``scales`` and
``mins`` ``[N, G]`` fp16 bits as int16 (``mins`` empty for 8-bit codes), ``G`` the
``K/32`` groups padded with zeros to a multiple of 8 (the kernel loads 8 at a time). ``K``
is a multiple of 64 (the kernel takes groups in pairs).

Each input row is quantized per group of 32 to integer codes, the groups' integer dot
products are scaled and summed in fp32, and Q4_1's minima multiply the inputs' exact group
sums. ``activation_bits`` says how fine the input codes are: 16 (scale ``amax / 32767``;
the products are within ~1e-5 of fp32's, and the default model's logits move by ~0.01,
less than fp16 weights move them) or 8 (scale ``amax / 127``: llama.cpp's CPU arithmetic
for these formats, faster, but it moves the default model's logits by ~2 and can
change its answers). Either way our decode reads a quarter to a half of fp16's bytes and
multiplies integers. Each output row depends on its input row alone (batch invariance).
The schema is defined here with a reference kernel for every device (the same arithmetic
in torch ops); the native CPU kernel (``grouped_linear.cpp``, loaded by ``build``) takes
precedence on the CPU where it could be built.
"""

# No ``from __future__ import annotations``: TorchScript reads ``GroupedWeight``'s field
# types as live types, not strings.
from typing import NamedTuple, Optional

import torch

from . import build

GROUP = 32
SCHEMA = (
    "grouped_linear(Tensor input, Tensor codes, Tensor scales, Tensor mins, int activation_bits)"
    " -> Tensor"
)


class GroupedWeight(NamedTuple):
    """One linear layer's weight in GGUF's groups (see the module docstring)."""

    codes: torch.Tensor
    scales: torch.Tensor
    mins: torch.Tensor
    activation_bits: int  # how the inputs are quantized per group: 16 or 8 (see above)


def weight_format(weight: GroupedWeight) -> str:
    return "Q4_1" if weight.codes.dtype == torch.uint8 else "Q8_0"


def weight_shape(weight: GroupedWeight) -> tuple[int, int]:
    """``[N, K]`` of the linear weight the groups hold (two 4-bit codes a byte for Q4_1)."""
    rows, width = weight.codes.shape
    return rows, width * 2 if weight_format(weight) == "Q4_1" else width


def _codes(codes: torch.Tensor) -> torch.Tensor:
    """The integer codes ``[N, G, 32]`` (G unpadded)."""
    rows = codes.shape[0]
    if codes.dtype == torch.uint8:
        pairs = codes.reshape(rows, -1, GROUP // 2)
        return torch.cat([pairs & 15, pairs >> 4], dim=-1)
    return codes.reshape(rows, -1, GROUP)


def _halves(bits: torch.Tensor, groups: int) -> torch.Tensor:
    return bits[:, :groups].view(torch.float16).float()


def dequantize(weight: GroupedWeight) -> torch.Tensor:
    """The fp32 weight ``[N, K]``: ``d * q + m`` per group, as GGUF's own dequantizer gives."""
    codes, scales, mins, _ = weight
    q = _codes(codes).float()
    groups = q.shape[1]
    out = q * _halves(scales, groups).unsqueeze(-1)
    if mins.numel():
        out = out + _halves(mins, groups).unsqueeze(-1)
    return out.reshape(codes.shape[0], -1)


def quantize_rows(rows: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """2-D fp32 ``rows`` per group of 32 to ``bits``-bit codes (8: llama.cpp's Q8_0): integer
    codes (as floats) ``[M, G, 32]``, scales ``[M, G]`` (``amax / levels``) and the groups'
    sums ``[M, G]``."""
    levels = float(2 ** (bits - 1) - 1)
    groups = rows.float().reshape(rows.shape[0], -1, GROUP)
    scale = groups.abs().amax(-1) / levels
    inverse = torch.where(scale != 0, 1 / scale, torch.zeros_like(scale))
    codes = torch.round(groups * inverse.unsqueeze(-1)).clamp(-levels, levels)
    return codes, scale, groups.sum(-1)


def _reference(
    input: torch.Tensor,
    codes: torch.Tensor,
    scales: torch.Tensor,
    mins: torch.Tensor,
    activation_bits: int,
) -> torch.Tensor:
    """The native kernel's arithmetic in torch ops (to fp32 summation order)."""
    qx, dx, xsum = quantize_rows(input, activation_bits)
    q = _codes(codes)
    groups = q.shape[1]
    dots = torch.einsum("mgj,ngj->mng", qx.double(), q.double())  # exact integers
    dw = _halves(scales, groups).double()
    out = (dots * (dx.double().unsqueeze(1) * dw.unsqueeze(0))).sum(-1)
    if mins.numel():
        out = out + xsum.double() @ _halves(mins, groups).double().T
    return out.float()


_library = torch.library.Library("furiosa", "FRAGMENT")  # held: the op lives as long as it
_library.define(SCHEMA)
_library.impl("grouped_linear", _reference, "CompositeExplicitAutograd")
# Native only (``gguf_groups.find_groups`` asks for it where the native kernel is loaded).
_library.define("find_groups(Tensor weight, int bits) -> Tensor[]")


def native_kernel_loaded() -> bool:
    """Whether the CPU calls run the native kernel (built and loaded on first call)."""
    return build.load()


def grouped_linear(
    rows: torch.Tensor,
    weight: GroupedWeight,
    bias: Optional[torch.Tensor],  # noqa: UP045 (TorchScript reads it live)
) -> torch.Tensor:
    """2-D fp32 ``rows`` times a grouped weight, in fp32 (TorchScript compiles it too)."""
    out = torch.ops.furiosa.grouped_linear(
        rows.contiguous(), weight.codes, weight.scales, weight.mins, weight.activation_bits
    )
    if bias is not None:
        out = out + bias
    return out  # type: ignore[no-any-return]
