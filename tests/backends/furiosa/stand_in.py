"""``StandInNativeEngine``: furiosa-llm's native engine protocol, served by our torch engine.

With no NPU here, furiosa-llm's real ``NativeLLMEngine`` cannot start. This stand-in
speaks its protocol instead: the members of ``furiosa_llm.api.NativeEngineLike`` with
the signatures of the native wheel's ``furiosa/llm_native/llm.pyi``. It takes what
furiosa-llm's frontend passes (a ``BatchEncoding``, furiosa-llm ``SamplingParams`` /
``PoolingParams``), checks it as the native engine needs it (``max_tokens`` set, no
stop strings, ``n == 1``), runs it on our torch engine, and answers with the native
wheel's own ``NativeRequestOutput`` / ``NativeCompletionOutput`` / ``Logprob`` /
``NativePoolingOutput`` objects. It records what it received, for the tests.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
from furiosa.llm_native.llm import (
    Logprob,
    NativeCompletionOutput,
    NativePoolingOutput,
    NativeRequestOutput,
)
from furiosa_llm.sampling_params import PoolingParams as FuriosaPooling
from furiosa_llm.sampling_params import SamplingParams as FuriosaSampling

from furiosa_integrations.engine import (
    PoolingParams,
    SamplingParams,
    ScorePair,
    StructuredOutputsParams,
)


def _ours(params: FuriosaSampling) -> SamplingParams:
    """Read furiosa-llm's SamplingParams the way its native engine does."""
    structured = None
    if params.structured_outputs is not None:
        s = params.structured_outputs
        structured = StructuredOutputsParams(
            json=s.json, regex=s.regex, choice=s.choice, grammar=s.grammar,
            json_object=s.json_object, structural_tag=s.structural_tag,
        )  # fmt: skip
    return SamplingParams(
        n=params.n,
        max_tokens=params.max_tokens,
        min_tokens=params.min_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=0 if params.top_k == -1 else params.top_k,
        min_p=params.min_p,
        repetition_penalty=params.repetition_penalty,
        stop_token_ids=params.stop_token_ids,
        ignore_eos=params.ignore_eos,
        logprobs=params.logprobs,
        structured_outputs=structured,
    )


class StandInNativeEngine:
    """A stand-in for furiosa-llm's ``NativeLLMEngine`` (no NPU here): our torch engine
    behind furiosa-llm's native protocol."""

    def __init__(self, torch_engine: Any, sep_token_id: int | None = None) -> None:
        self.torch_engine = torch_engine
        self.sep_token_id = sep_token_id  # a cross-encoder's, to tell a pair's segments
        self.received: list[tuple[str | None, Any]] = []  # (request_id, params) in order
        self.aborted: list[str] = []
        self._alive = True
        self._terminated = threading.Event()

    @property
    def max_model_len(self) -> int:
        return int(self.torch_engine.max_model_len)

    @property
    def pooling_type(self) -> str | None:
        return "MEAN" if self.torch_engine.task == "embed" else None

    def generate(self, inputs: Any, sampling_params: Any) -> Any:
        raise NotImplementedError("the stand-in serves stream_generate and encode only")

    async def stream_generate(
        self, inputs: Any, sampling_params: Any, request_id: str | None = None
    ) -> AsyncGenerator[NativeRequestOutput, None]:
        if not isinstance(sampling_params, FuriosaSampling):
            raise TypeError(f"expected furiosa_llm.SamplingParams, got {type(sampling_params)}")
        if sampling_params.max_tokens is None:  # a plain integer in the native engine
            raise TypeError("SamplingParams.max_tokens must be set for the native engine")
        if sampling_params.stop:
            raise ValueError("stop strings never reach the native engine")
        if sampling_params.n != 1:
            raise ValueError("the native engine runs n == 1 requests")
        self.received.append((request_id, sampling_params))
        steps = self.torch_engine.stream_generate(
            list(inputs.input_ids), _ours(sampling_params), request_id
        )
        async for step in steps:
            logprobs = None
            if step.logprobs is not None:
                logprobs = []
                for token, lp in zip(step.new_token_ids, step.logprobs, strict=True):
                    entries = [(t, Logprob(v, rank, None)) for rank, (t, v) in enumerate(lp.top, 1)]
                    if token not in {t for t, _ in entries}:
                        entries.append((token, Logprob(lp.logprob, None, None)))
                    logprobs.append(entries)
            yield NativeRequestOutput(
                [NativeCompletionOutput(0, step.new_token_ids, logprobs, None, step.finish_reason)],
                num_cached_tokens=step.num_cached_tokens,
                num_prompt_tokens=step.num_prompt_tokens,
            )

    def acquire_vision(self, media_id: int) -> list[int] | None:
        return None

    async def encode_vision(
        self, media_ids: list[int], patches: list[Any], request_id: str | None = None
    ) -> list[list[int]]:
        raise NotImplementedError("the stand-in has no vision encoder")

    def vision_encoder_buckets(self) -> list[int]:
        return []

    async def encode(
        self, inputs: Any, pooling_params: Any, request_id: str | None = None
    ) -> list[NativePoolingOutput]:
        if not isinstance(pooling_params, FuriosaPooling):
            raise TypeError(f"expected furiosa_llm.PoolingParams, got {type(pooling_params)}")
        if pooling_params.task is None:
            raise ValueError("PoolingParams.task must be set for encoding requests")
        self.received.append((request_id, pooling_params))
        if pooling_params.task == "score":  # a cross-encoder: one score for the pair
            ids = list(inputs.input_ids)
            [score] = await self.torch_engine.score(
                [ScorePair("", "", ids, _segments(ids, self.sep_token_id))],
                PoolingParams(),
                request_id or "stand-in",
            )
            return [NativePoolingOutput(np.asarray([score], dtype=np.float32))]
        ours = PoolingParams(
            normalize=bool(pooling_params.normalize),
            dimensions=pooling_params.dimensions,
            truncate_prompt_tokens=pooling_params.truncate_prompt_tokens,
        )
        [vector] = await self.torch_engine.encode(
            [list(inputs.input_ids)], ours, request_id or "stand-in"
        )
        return [NativePoolingOutput(np.asarray(vector, dtype=np.float32))]

    def abort_request(self, request_id: str) -> None:
        self.aborted.append(request_id)
        self.torch_engine.abort_request(request_id)

    def is_alive(self) -> bool:
        return self._alive and bool(self.torch_engine.is_alive())

    def wait_until_terminated(self) -> None:
        # Blocks until shutdown(), as the native engine's does: furiosa-llm's server runs it
        # in a thread for its whole life and shuts itself down as soon as it returns.
        self._terminated.wait()

    def shutdown(self) -> None:
        self._alive = False  # the torch engine below is shared: it keeps running
        self._terminated.set()

    def reset_prefix_cache(self, target: str = "all") -> bool:
        return True

    def get_prometheus_metrics(self) -> str:
        return ""


def _segments(ids: list[int], sep: int | None) -> list[int]:
    """BERT's segments of a pair: 0 through the first [SEP], 1 after (the native engine
    gets only the ids, as furiosa-llm sends them)."""
    if sep is None or sep not in ids:
        return [0] * len(ids)
    cut = ids.index(sep) + 1
    return [0] * cut + [1] * (len(ids) - cut)
