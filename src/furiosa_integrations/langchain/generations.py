"""What LangChain's chat model and LLM share: engine chunks as generation info, usage
dicts, LangSmith's sampling parameters and the streaming check."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks.manager import BaseRunManager

from ..adapter_fields import SamplingOptions
from ..core import GenerationChunk, RequestOutputKind, SamplingParams
from ..errors import InvalidRequestError


def generation_info(chunk: GenerationChunk, model_name: str) -> dict[str, Any] | None:
    """What the last chunk of a completion reports: why it ended and which model ran."""
    if chunk.finish_reason is None:
        return None
    info: dict[str, Any] = {"finish_reason": chunk.finish_reason, "model_name": model_name}
    if chunk.stop_reason is not None:
        info["stop_reason"] = chunk.stop_reason
    return info


def logprobs_info(chunk: GenerationChunk) -> dict[str, Any] | None:
    """Log-probabilities in the OpenAI ``logprobs.content`` shape."""
    if not chunk.logprobs:
        return None
    return {
        "content": [
            {
                "token": lp.token,
                "logprob": lp.logprob,
                "top_logprobs": [
                    {"token": text, "logprob": value} for _, text, value in lp.top_logprobs
                ],
            }
            for lp in chunk.logprobs
        ]
    }


def ls_sampling(
    fields: SamplingOptions, stop: list[str] | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The ``ls_*`` sampling entries of ``_get_ls_params``."""
    params: dict[str, Any] = {}
    temperature = kwargs.get("temperature", fields.temperature)
    if isinstance(temperature, (int, float)):
        params["ls_temperature"] = temperature
    max_tokens = kwargs.get("max_tokens", fields.max_tokens)
    if isinstance(max_tokens, int):
        params["ls_max_tokens"] = max_tokens
    stop = stop if stop is not None else fields.stop
    if stop:
        params["ls_stop"] = list(stop)
    return params


def check_streamable(params: SamplingParams) -> None:
    """A stream carries one completion; refuse ``n > 1`` before anything is queued."""
    if params.n != 1:
        raise InvalidRequestError(f"Streaming returns one completion per request; got n={params.n}")


def hears_tokens(run_manager: BaseRunManager | None) -> bool:
    """Whether a callback handler is there to be handed tokens as they come."""
    return run_manager is not None and bool(run_manager.handlers)


def params_for_reading(
    params: SamplingParams, streaming: bool, token_callbacks: bool
) -> SamplingParams:
    """``params`` for how the tokens will be read. A stream must be streamable. A call that
    returns only the whole answer, with no callback handler to hand tokens to as they come,
    asks for its output at the end (``RequestOutputKind.FINAL_ONLY``, as vLLM's OpenAI
    server does for a request that does not stream): the engine then wakes the caller once,
    not once a token."""
    if streaming:
        check_streamable(params)
        return params
    if token_callbacks:
        return params
    return params.clone(output_kind=RequestOutputKind.FINAL_ONLY)
