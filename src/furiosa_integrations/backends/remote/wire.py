"""Our requests as ``/v1/completions`` and ``/v1/embeddings`` bodies, and the answers back.

A generation request goes as token ids and always streams, with the new token ids of each
chunk (``return_token_ids``) and a usage chunk at the end. Every sampling option is sent,
since a server fills an omitted one from the model's generation config (and
``max_tokens`` defaults to 16); stop strings are not: the shared engine matches them on
the text, as it does in-process. ``stop_token_ids`` also carries the model's EOS ids:
furiosa-llm replaces its defaults (the EOS ids) with an explicit list.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Collection
from typing import Any

from ...core import NativeLogprob, NativeStep, PoolingParams, SamplingParams
from ...core.structured_outputs import StructuredOutputsParams
from ...errors import MalformedResponseError
from .capabilities import ServerKind

_FINISH_REASONS = ("stop", "length", "abort")
_TOKEN_PREFIX = "token_id:"


def structured_outputs_body(structured: StructuredOutputsParams) -> dict[str, Any]:
    """The one constraint, as both servers take it (a structural tag as a JSON string)."""
    kind = structured.kind()
    value = getattr(structured, kind)
    if kind == "structural_tag" and not isinstance(value, str):
        value = json.dumps(value)
    elif kind == "json_object":
        value = True
    return {kind: value}


def completion_body(
    prompt_token_ids: list[int],
    params: SamplingParams,
    *,
    model: str,
    max_model_len: int,
    eos_token_ids: Collection[int],
) -> dict[str, Any]:
    """The ``/v1/completions`` body of one ``n=1`` native request."""
    stop_ids = set(params.stop_token_ids or ())
    if not params.ignore_eos:
        stop_ids |= set(eos_token_ids)
    room = max_model_len - len(prompt_token_ids)
    body: dict[str, Any] = {
        **params.extra_args,
        "model": model,
        "prompt": list(prompt_token_ids),
        "stream": True,
        "stream_options": {"include_usage": True},
        "return_token_ids": True,
        "n": 1,
        "max_tokens": params.max_tokens or room,
        "min_tokens": params.min_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": -1 if params.top_k in (0, -1) else params.top_k,  # -1 disables on both
        "min_p": params.min_p,
        "repetition_penalty": params.repetition_penalty,
        "stop_token_ids": sorted(stop_ids),
        "ignore_eos": params.ignore_eos,
        "skip_special_tokens": params.skip_special_tokens,
    }
    # Sent only when set: furiosa-llm would refuse nothing, but ignore them (capabilities).
    if params.presence_penalty != 0.0:
        body["presence_penalty"] = params.presence_penalty
    if params.frequency_penalty != 0.0:
        body["frequency_penalty"] = params.frequency_penalty
    if params.seed is not None:
        body["seed"] = params.seed
    if params.logprobs is not None:
        body["logprobs"] = params.logprobs
        body["return_tokens_as_token_ids"] = True  # ids, not strings that may not round-trip
    if params.structured_outputs is not None:
        body["structured_outputs"] = structured_outputs_body(params.structured_outputs)
    return body


class StepDecoder:
    """Completion chunks -> ``NativeStep``; the finishing step is held until the usage chunk
    (which carries the cached-token count) or the end of the stream."""

    def __init__(
        self,
        num_prompt_tokens: int,
        stop_token_ids: Collection[int],
        logprobs: int | None,
        where: str,
    ) -> None:
        self.num_prompt_tokens = num_prompt_tokens
        self.stop_token_ids = frozenset(stop_token_ids)
        self.logprobs = logprobs
        self.where = where
        self.server_id: str | None = None
        self.held: NativeStep | None = None  # the finishing step, until usage arrives

    def feed(self, chunk: dict[str, Any]) -> list[NativeStep]:
        """The steps ready to deliver after ``chunk``."""
        if self.server_id is None and isinstance(chunk.get("id"), str):
            self.server_id = chunk["id"]
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise self._malformed("a chunk without a choices list", chunk)
        out: list[NativeStep] = []
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                raise self._malformed("a choice of another completion", chunk)
            step = self._step(choice, chunk)
            if step.finish_reason is not None:
                self.held = step
            elif self.held is not None:
                raise self._malformed("tokens after the finishing chunk", chunk)
            else:
                out.append(step)
        usage = chunk.get("usage")
        if isinstance(usage, dict) and self.held is not None:
            details = usage.get("prompt_tokens_details") or {}
            cached = details.get("cached_tokens") if isinstance(details, dict) else None
            self.held.num_cached_tokens = int(cached or 0)
            out.append(self.held)
            self.held = None
        return out

    def finish(self) -> list[NativeStep]:
        """At the end of the stream: the held step (a server that sent no usage chunk)."""
        held, self.held = self.held, None
        return [held] if held is not None else []

    def _step(self, choice: dict[str, Any], chunk: dict[str, Any]) -> NativeStep:
        ids = choice.get("token_ids")
        if not isinstance(ids, list) or not all(isinstance(t, int) for t in ids):
            raise self._malformed(
                "a chunk without token ids (does the server support return_token_ids?)", chunk
            )
        reason = choice.get("finish_reason")
        finish: Any = None
        if reason is not None:
            # Anything else a server reports ends the request as aborted.
            finish = reason if reason in _FINISH_REASONS else "abort"
        stop_token = None
        if finish == "stop" and ids:
            stop_reason = choice.get("stop_reason")
            if isinstance(stop_reason, int) or ids[-1] in self.stop_token_ids:
                stop_token = ids[-1]
        return NativeStep(
            list(ids),
            finish_reason=finish,
            stop_token_id=stop_token,
            logprobs=self._logprobs(choice, len(ids), chunk) if self.logprobs is not None else None,
            num_prompt_tokens=self.num_prompt_tokens,
        )

    def _logprobs(self, choice: dict[str, Any], count: int, chunk: Any) -> list[NativeLogprob]:
        data = choice.get("logprobs")
        if count == 0:
            return []
        if not isinstance(data, dict):
            raise self._malformed("a chunk without the logprobs asked for", chunk)
        values = data.get("token_logprobs") or []
        tops = data.get("top_logprobs") or [None] * len(values)
        out = []
        for value, top in zip(values, tops, strict=False):
            ranked = sorted(
                ((_token_id(key, chunk, self), float(v)) for key, v in (top or {}).items()),
                key=lambda item: -item[1],
            )
            out.append(NativeLogprob(float(value), ranked[: self.logprobs]))
        return out

    def _malformed(self, what: str, chunk: Any) -> MalformedResponseError:
        text = json.dumps(chunk)[:200]
        return MalformedResponseError(f"{self.where} sent {what}: {text}")


def _token_id(key: str, chunk: Any, decoder: StepDecoder) -> int:
    if not key.startswith(_TOKEN_PREFIX):
        raise decoder._malformed("logprobs keyed by text, not token_id:N", chunk)
    return int(key[len(_TOKEN_PREFIX) :])


def embedding_body(
    prompts: list[list[int]], params: PoolingParams, *, model: str, kind: ServerKind
) -> dict[str, Any]:
    """The ``/v1/embeddings`` body (inputs already truncated by the shared engine).

    Normalizing is ``normalize`` on furiosa-llm and ``use_activation`` on vLLM (0.32
    refuses ``normalize``); another server gets it only when it is off (not the default).
    """
    body: dict[str, Any] = {
        "model": model,
        "input": [list(p) for p in prompts],
        "encoding_format": "float",
    }
    if kind == "vllm":
        body["use_activation"] = params.normalize
    elif kind == "furiosa-llm" or not params.normalize:
        body["normalize"] = params.normalize
    if params.dimensions is not None:
        body["dimensions"] = params.dimensions
    return body


def vectors_from_response(data: Any, count: int, where: str) -> list[list[float]]:
    """The ``count`` vectors of an embeddings response, in input order."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != count:
        got = len(items) if isinstance(items, list) else "no"
        raise MalformedResponseError(f"{where} returned {got} embeddings for {count} inputs")
    vectors: list[list[float]] = [[] for _ in range(count)]
    for position, item in enumerate(items):
        index = item.get("index", position) if isinstance(item, dict) else None
        value = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count:
            raise MalformedResponseError(f"{where} returned an embedding with index {index!r}")
        if isinstance(value, str):  # base64 little-endian float32 (a server's own choice)
            raw = base64.b64decode(value)
            value = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        if not isinstance(value, list):
            raise MalformedResponseError(f"{where} returned an embedding that is not a list")
        vectors[index] = [float(x) for x in value]
    return vectors


__all__ = [
    "StepDecoder",
    "completion_body",
    "embedding_body",
    "structured_outputs_body",
    "vectors_from_response",
]
