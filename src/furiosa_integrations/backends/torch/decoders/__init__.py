"""Decoders for the torch generation engine: a native forward per family, else transformers.

``load_decoder`` picks the family from ``config.json``'s ``model_type``. Native families
share one forward (``skeleton.py``) and differ only in how their module reads the
checkpoint into a ``DecoderModel``. Anything else transformers can load runs through
``TransformersDecoder``, one sequence per forward: correct, and slower, which the log
says. ``decoder.native`` and ``decoder.family`` tell which one a model got.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..groups_cache import GroupsCache
from ..kernels.grouped_linear import GroupedWeight, native_kernel_loaded
from ..packed_linear import Weight, gguf_activation_bits
from . import gemma, gpt2, gpt_neox, granite, llama, olmo2, phi3
from .checkpoint import Checkpoint
from .config_fields import NotNative
from .interface import Decoder, DecoderCache, PrefillSegment
from .model import DecoderModel
from .skeleton import NativeDecoder
from .transformers_fallback import TransformersDecoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    anchor: str  # a tensor every checkpoint of the family has (its prefix is stripped)
    read: Callable[[Checkpoint], DecoderModel]


_MODULES: list[Any] = [llama, gemma, phi3, olmo2, granite, gpt2, gpt_neox]
FAMILIES: dict[str, Family] = {
    model_type: Family(getattr(module, "ANCHOR", llama.ANCHOR), module.read)
    for module in _MODULES
    for model_type in module.MODEL_TYPES
}
NATIVE_MODEL_TYPES = tuple(FAMILIES)


def load_decoder(
    path: Path,
    config: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    max_len: int,
    light_weights: bool = False,
) -> Decoder:
    """The native decoder for the checkpoint's family, else transformers' model (logged).

    ``light_weights``: a native decoder computing in fp32 stores its linear weights lighter
    (``packed_linear.pack_light``: a GGUF model's own groups, else fp16); the transformers
    fallback keeps ``dtype``.
    """
    model_type = config.get("model_type")
    family = FAMILIES.get(str(model_type))
    if family is None:
        reason = f"model_type {model_type!r} has no native decoder"
    else:
        cache = _groups_cache(path, device, dtype, light_weights)
        ckpt = Checkpoint(path, config, device, dtype, family.anchor)
        if cache is not None:
            ckpt.groups = cache.load()
        try:
            model = family.read(ckpt)
        except NotNative as exc:
            reason = f"{model_type} with {exc}"
        else:
            logger.info("%s: native %s decoder", path.name, model.family)
            found: dict[str, GroupedWeight] = {}
            keys = {id(tensor): key for key, tensor in ckpt.read_linears.items()}

            def on_packed(plain: torch.Tensor, packed: Weight) -> None:
                if isinstance(packed, GroupedWeight) and id(plain) in keys:
                    found[keys[id(plain)]] = packed

            decoder = NativeDecoder(model, device, dtype, max_len, light_weights, on_packed)
            if cache is not None and found:
                cache.save({**ckpt.groups, **found})
            return decoder
    logger.warning(
        "%s: %s; running it through transformers' AutoModelForCausalLM, one sequence per "
        "forward (the slower path)",
        path.name,
        reason,
    )
    return TransformersDecoder(path, device, dtype)


def _groups_cache(
    path: Path, device: torch.device, dtype: torch.dtype, light_weights: bool
) -> GroupsCache | None:
    """Where a GGUF model's groups are kept between loads, when this load would look for
    them (light weights in fp32 math on the CPU, ``FURIOSA_GGUF_WEIGHTS`` not 0, our
    kernels built)."""
    if not light_weights or dtype != torch.float32 or device.type != "cpu":
        return None
    bits = gguf_activation_bits()
    if bits is None or not native_kernel_loaded():
        return None
    return GroupsCache(path, bits)


__all__ = [
    "NATIVE_MODEL_TYPES",
    "Decoder",
    "DecoderCache",
    "NativeDecoder",
    "PrefillSegment",
    "TransformersDecoder",
    "load_decoder",
]
