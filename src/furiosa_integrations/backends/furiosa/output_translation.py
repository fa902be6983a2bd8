"""furiosa-llm's native outputs translated to our ``NativeStep`` and vectors.

A ``NativeRequestOutput`` carries, per completion, the token ids new since the last
output, their logprobs as ``[(token_id, Logprob(logprob, rank, ...)), ...]`` per token,
and a finish reason. Only ``n=1`` requests are sent natively, so there is one completion.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ...core import NativeLogprob, NativeStep

_FINISH_REASONS = ("stop", "length", "abort")


def _logprobs(token_ids: list[int], native: Any, top_k: int) -> list[NativeLogprob]:
    out = []
    for token, entries in zip(token_ids, native, strict=False):
        chosen = next((lp for tid, lp in entries if tid == token), None)
        ranked = sorted(
            ((lp.rank, tid, lp.logprob) for tid, lp in entries if lp.rank is not None),
            key=lambda item: item[0],
        )
        top = [(tid, float(value)) for _, tid, value in ranked[:top_k]]
        value = float(chosen.logprob) if chosen is not None else float("-inf")
        out.append(NativeLogprob(value, top))
    return out


def step_from_output(
    output: Any,
    *,
    stop_ids: Collection[int],
    logprobs: int | None,
    prompt_len: int,
) -> NativeStep:
    """One ``NativeStep`` from one ``NativeRequestOutput`` of an ``n=1`` request.

    ``stop_ids``: EOS and stop token ids, so a ``"stop"`` that ends on one of them
    reports it as ``stop_token_id`` (the shared engine keeps it out of the text).
    """
    tokens: list[int] = []
    finish: Any = None
    native_logprobs: list[NativeLogprob] = []
    for completion in output.outputs:
        new = [int(t) for t in completion.token_ids]
        if logprobs is not None and completion.logprobs is not None:
            native_logprobs.extend(_logprobs(new, completion.logprobs, logprobs))
        tokens.extend(new)
        if completion.finish_reason is not None:
            reason = str(completion.finish_reason)
            # Anything else the native engine reports ends the request as aborted.
            finish = reason if reason in _FINISH_REASONS else "abort"
    stop_token = tokens[-1] if finish == "stop" and tokens and tokens[-1] in stop_ids else None
    return NativeStep(
        tokens,
        finish_reason=finish,
        stop_token_id=stop_token,
        logprobs=native_logprobs if logprobs is not None else None,
        num_prompt_tokens=int(output.num_prompt_tokens or prompt_len),
        num_cached_tokens=int(output.num_cached_tokens or 0),
    )


def vector_from_output(outputs: Any) -> list[float]:
    """The pooled vector of one native ``encode`` call (a list of ``NativePoolingOutput``)."""
    if not outputs:
        raise ValueError("The native engine returned no pooling output")
    return [float(x) for x in outputs[0].data.reshape(-1).tolist()]


def score_from_output(outputs: Any) -> float:
    """The score of one native ``encode`` call with task ``score`` (one value)."""
    values = vector_from_output(outputs)
    if len(values) != 1:
        raise ValueError(f"The native engine returned {len(values)} values for one score")
    return values[0]
