"""``furiosa::rms_norm``: RMSNorm over the last dimension in fp32, one pass per row.

The native kernel (``rms_norm.cpp``) replaces torch's ~8-op fp32 ``rms_norm`` where the
decoder runs our kernels (the GGUF path); each row's sum in one fixed order. The reference
kernel is ``F.rms_norm`` itself.
"""

# No ``from __future__ import annotations``: TorchScript compiles ``native_rms_norm``.
import torch
import torch.nn.functional as F

from .grouped_linear import _library

_library.define("rms_norm(Tensor input, Tensor weight, float eps) -> Tensor")


def _reference(input: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return F.rms_norm(input, input.shape[-1:], weight, eps)


_library.impl("rms_norm", _reference, "CompositeExplicitAutograd")


def native_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.ops.furiosa.rms_norm(x, weight, eps)  # type: ignore[no-any-return]
