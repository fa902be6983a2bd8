"""What each kind of server honours, so a request it would silently change is refused first.

furiosa-llm 2026.4's server accepts ``presence_penalty``, ``frequency_penalty``, ``seed``
and ``logit_bias`` (and ``echo``, ``suffix``) and drops them without a word; vLLM honours
them. Unknown request fields pass through as the request's ``extra_args`` (both servers
take them), except the ones this backend sets itself.
"""

from __future__ import annotations

from typing import Literal

from ...core import SamplingParams
from ...errors import InvalidRequestError

ServerKind = Literal["furiosa-llm", "vllm", "openai-compatible"]

# Request fields the backend sets itself; extra_args may not override them.
MANAGED_FIELDS = frozenset(
    {
        "model", "prompt", "stream", "stream_options", "return_token_ids", "n", "max_tokens",
        "min_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
        "presence_penalty", "frequency_penalty", "seed", "stop", "stop_token_ids",
        "include_stop_str_in_output", "ignore_eos", "skip_special_tokens", "logprobs",
        "return_tokens_as_token_ids", "structured_outputs", "response_format", "request_id",
        "input", "encoding_format", "dimensions", "normalize", "truncate_prompt_tokens",
    }
)  # fmt: skip

# Fields furiosa-llm 2026.4 declares as no-op placeholders (protocol.py: "supported by
# OpenAI but not by Furiosa"): accepted, then dropped.
_FURIOSA_DROPS = ("logit_bias", "echo", "suffix")


def check_sampling_params(params: SamplingParams, kind: ServerKind) -> None:
    """Refuse what the server would not honour, before anything is sent."""
    for name in sorted(set(params.extra_args) & MANAGED_FIELDS):
        raise InvalidRequestError(
            f"extra_args may not set {name!r}: the served backend sets it from the request's "
            "own options (pass it as that option instead)"
        )
    if kind != "furiosa-llm":
        return
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(params, name) != 0.0:
            raise InvalidRequestError(
                f"{name} is not supported by furiosa-llm's server (it accepts and ignores it); "
                "use repetition_penalty"
            )
    if params.seed is not None and not params.greedy:
        raise InvalidRequestError(
            "A per-request seed is not supported by furiosa-llm's server (it accepts and "
            "ignores it); drop seed or use temperature=0"
        )
    for name in _FURIOSA_DROPS:
        if name in params.extra_args:
            raise InvalidRequestError(
                f"{name} is not supported by furiosa-llm's server (it accepts and ignores it)"
            )


__all__ = ["MANAGED_FIELDS", "ServerKind", "check_sampling_params"]
