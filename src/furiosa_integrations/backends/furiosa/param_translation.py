"""Our request options translated to furiosa-llm's ``SamplingParams`` /
``StructuredOutputsParams`` / ``PoolingParams``.

furiosa-llm validates its own objects when they are built, so building one is also the
check: an option furiosa-llm rejects raises ``InvalidRequestError`` with its message,
before anything is queued. Options furiosa-llm cannot honour are refused rather than
dropped, unless they could not change the output. Stop strings never reach the native
engine (the shared engine matches them on the text), as in furiosa-llm's own frontend.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from ...core import PoolingParams, RequestOutputKind, SamplingParams, StructuredOutputsParams
from ...errors import InvalidRequestError

# The extra_args keys furiosa-llm reads (its SamplingParams takes kv_transfer_params, the
# PD-disaggregation endpoint, from there); no other key changes what it does.
_FURIOSA_EXTRA_ARGS = ("kv_transfer_params",)

_KIND_NAMES = {
    RequestOutputKind.CUMULATIVE: "CUMULATIVE",
    RequestOutputKind.DELTA: "DELTA",
    RequestOutputKind.FINAL_ONLY: "FINAL",
}


def _accepted(cls: type) -> set[str]:
    return {
        name
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def _rejected(what: str, exc: Exception) -> InvalidRequestError:
    return InvalidRequestError(f"furiosa-llm rejected the {what}: {exc}")


def to_furiosa_structured(structured: StructuredOutputsParams) -> Any:
    """furiosa-llm's ``StructuredOutputsParams`` for ours (same fields, one constraint)."""
    from furiosa_llm.sampling_params import StructuredOutputsParams as FuriosaStructured

    tag = structured.structural_tag
    try:
        return FuriosaStructured(
            json=structured.json,
            regex=structured.regex,
            choice=list(structured.choice) if structured.choice is not None else None,
            grammar=structured.grammar,
            json_object=True if structured.json_object else None,
            structural_tag=json.dumps(tag) if isinstance(tag, dict) else tag,
        )
    except (ValueError, TypeError) as exc:
        raise _rejected("structured output options", exc) from exc


def to_furiosa_sampling_params(
    params: SamplingParams,
    *,
    prompt_len: int | None = None,
    max_model_len: int | None = None,
) -> Any:
    """furiosa-llm's ``SamplingParams`` for one native request (``n`` is always 1 there:
    the shared engine runs each of ``n`` samples as its own request).

    ``max_tokens=None`` becomes the room left in the context, since furiosa-llm's native
    engine needs a number. Of ``extra_args`` only the keys furiosa-llm reads are passed on.
    """
    from furiosa_llm.outputs import RequestOutputKind as FuriosaKind
    from furiosa_llm.sampling_params import SamplingParams as FuriosaSampling

    accepted = _accepted(FuriosaSampling)
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(params, name) != 0.0 and name not in accepted:
            raise InvalidRequestError(f"{name} is not supported by the furiosa backend")
    if params.seed is not None and "seed" not in accepted and not params.greedy:
        raise InvalidRequestError(
            "A per-request seed is not supported by the furiosa backend (sampling there is "
            "not reproducible per request); drop seed or use temperature=0"
        )
    max_tokens = params.max_tokens
    if max_tokens is None and prompt_len is not None and max_model_len is not None:
        max_tokens = max(max_model_len - prompt_len, 1)
    extra_args = {k: v for k, v in params.extra_args.items() if k in _FURIOSA_EXTRA_ARGS}
    kwargs: dict[str, Any] = {
        "n": params.n,
        "repetition_penalty": params.repetition_penalty,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": -1 if params.top_k in (0, -1) else params.top_k,  # furiosa-llm: -1 disables
        "min_p": params.min_p,
        "stop": None,  # matched on the text by the shared engine, never natively
        "stop_token_ids": list(params.stop_token_ids) if params.stop_token_ids else None,
        "include_stop_str_in_output": params.include_stop_str_in_output,
        "ignore_eos": params.ignore_eos,
        "max_tokens": max_tokens,
        "min_tokens": params.min_tokens,
        "skip_special_tokens": params.skip_special_tokens,
        "logprobs": params.logprobs,
        "output_kind": FuriosaKind[_KIND_NAMES[params.output_kind]],
        "structured_outputs": (
            to_furiosa_structured(params.structured_outputs)
            if params.structured_outputs is not None
            else None
        ),
        "extra_args": extra_args or None,
    }
    for name in ("presence_penalty", "frequency_penalty", "seed"):
        if name in accepted and getattr(params, name) not in (None, 0.0):
            kwargs[name] = getattr(params, name)
    try:
        return FuriosaSampling(**kwargs)
    except (ValueError, TypeError) as exc:
        raise _rejected("sampling options", exc) from exc


def to_furiosa_pooling_params(params: PoolingParams) -> Any:
    """furiosa-llm's ``PoolingParams`` (task ``embed``: the only pooling task served here)."""
    from furiosa_llm.sampling_params import PoolingParams as FuriosaPooling

    try:
        return FuriosaPooling(
            truncate_prompt_tokens=params.truncate_prompt_tokens,
            dimensions=params.dimensions,
            normalize=params.normalize,
            task="embed",
        )
    except (ValueError, TypeError) as exc:
        raise _rejected("pooling options", exc) from exc


def to_furiosa_score_params() -> Any:
    """furiosa-llm's ``PoolingParams`` for a pair, as its ``LLM.score`` sends it: task
    ``score``, defaults otherwise (pairs are truncated when they are tokenized)."""
    from furiosa_llm.sampling_params import PoolingParams as FuriosaPooling

    return FuriosaPooling(task="score")
