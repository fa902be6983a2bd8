"""Functional building blocks shared by the torch engine's own decoder and encoder forwards."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Llama's RMSNorm: normalised in fp32, scaled in the input's dtype (as transformers does)."""
    dtype = x.dtype
    if dtype == torch.float32 and weight.dtype == torch.float32:
        return F.rms_norm(x, x.shape[-1:], weight, eps)  # the same sums, one fused op
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(dtype)


def rms_norm_fp32(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm scaled in fp32 before the cast back (Gemma's ``1 + w``, OLMo 2); ``weight``
    is kept in fp32 so the product is the one transformers computes."""
    if x.dtype == torch.float32:
        return F.rms_norm(x, x.shape[-1:], weight, eps)
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return (x32 * weight).to(x.dtype)


def soft_cap(x: torch.Tensor, cap: float) -> torch.Tensor:
    """Gemma's tanh soft-capping: values squashed smoothly into ``(-cap, cap)``."""
    return torch.tanh(x / cap) * cap


# transformers' ``hidden_act`` names for the activations our forwards support.
ACTIVATIONS = ("silu", "swish", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


def apply_activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """``hidden_act`` ``name`` applied to ``x`` (TorchScript compiles this: no callables)."""
    if name == "silu" or name == "swish":
        return F.silu(x)
    if name == "gelu":
        return F.gelu(x)
    if name == "gelu_new" or name == "gelu_pytorch_tanh":
        return F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu(x)
    raise ValueError("unsupported activation " + name)


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation as a callable; an unsupported name is refused here, at load."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"hidden_act={name!r} is not supported by the torch engine "
            f"(supported: {', '.join(ACTIVATIONS)})"
        )
    return functools.partial(apply_activation, name)
