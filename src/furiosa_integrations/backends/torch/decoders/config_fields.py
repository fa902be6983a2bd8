"""Reading a decoder's ``config.json`` as transformers would, without transformers.

Configs come in two generations: transformers 5 writes ``rope_parameters`` (flat, or one
entry per layer type) and ``layer_types``; older ones write ``rope_theta`` /
``rope_scaling`` and leave the sliding-window layout to the config class. Family modules
pass what their config class would default to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Layer types our attention implements; another (chunked, linear, ...) means "not native".
FULL = "full_attention"
SLIDING = "sliding_attention"
# RoPE variants whose frequencies change with the sequence length inside transformers'
# forward: a static table matches them only up to the original length, so they fall back.
DYNAMIC_ROPE_TYPES = ("dynamic", "longrope")


class NotNative(Exception):
    """This checkpoint uses something the native decoders do not implement."""


def head_dim(config: dict[str, Any]) -> int:
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


def rope_parameters(
    config: dict[str, Any], layer_type: str | None = None, default_theta: float = 10000.0
) -> dict[str, Any]:
    """One layer type's RoPE parameters, with ``rope_type`` and ``rope_theta`` filled in."""
    params: Any = config.get("rope_parameters") or {}
    if layer_type is not None and isinstance(params.get(layer_type), dict):
        params = params[layer_type]
    params = dict(params)
    if not params or all(isinstance(value, dict) for value in params.values()):
        params = dict(config.get("rope_scaling") or {})
        params.setdefault("rope_theta", config.get("rope_theta", default_theta))
    params.setdefault("rope_theta", config.get("rope_theta", default_theta))
    params["rope_type"] = params.get("rope_type") or params.get("type") or "default"
    params.setdefault("partial_rotary_factor", config.get("partial_rotary_factor", 1.0))
    if params["rope_type"] in DYNAMIC_ROPE_TYPES:
        raise NotNative(f"{params['rope_type']!r} RoPE scaling changes with the sequence length")
    return params


def layer_types(config: dict[str, Any], default: Callable[[int], str] | None = None) -> list[str]:
    """Each layer's attention type: the config's ``layer_types``, else the family's pattern
    (``default(i)``), else full attention everywhere."""
    count = int(config["num_hidden_layers"])
    types = list(config.get("layer_types") or [])
    if not types:
        types = [default(i) if default else FULL for i in range(count)]
    unknown = sorted(set(types) - {FULL, SLIDING})
    if unknown:
        raise NotNative(f"layer types {unknown} are not implemented natively")
    return types


def layer_windows(config: dict[str, Any], types: list[str]) -> list[int | None]:
    """The sliding window of each layer (``None``: full attention)."""
    window = config.get("sliding_window")
    return [int(window) if window and kind == SLIDING else None for kind in types]


def all_sliding_if_windowed(config: dict[str, Any]) -> Callable[[int], str]:
    """Mistral and Phi-3 put every layer in the window when ``sliding_window`` is set."""
    kind = SLIDING if config.get("sliding_window") else FULL
    return lambda i: kind


def first_of(config: dict[str, Any], *names: str, default: Any = None) -> Any:
    """The first of ``names`` the config sets (families renamed fields over time)."""
    for name in names:
        if config.get(name) is not None:
            return config[name]
    return default
