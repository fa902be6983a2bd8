"""furiosa-llm's ``AsyncLLMEngine`` (vLLM's API), on top of the shared ``AsyncEngine``.

It adds nothing to generation itself: it turns vLLM-style prompts into engine requests
and the engine's chunks into ``RequestOutput`` objects. Validation (request-id
uniqueness, context length, generation vs pooling task) is the engine's and happens
before anything is queued. Unlike furiosa-llm's own, a consumer that stops iterating early, or
is cancelled, aborts the native request and frees the request id.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any

from ..core import AsyncEngine, GenerationChunk, PoolingParams, SamplingParams
from ..core.request_stream import RequestStream
from ..errors import InvalidRequestError
from .llm_engine_base import LLMEngineBase
from .request_output import (
    PoolingOutput,
    PoolingRequestOutput,
    RequestOutput,
    RequestOutputAssembler,
)

# A prompt as vLLM / furiosa-llm take it: text, {"prompt": text, "multi_modal_data": ...}
# or {"prompt_token_ids": [...]}.
PromptType = str | dict[str, Any]


def split_prompt(prompt: PromptType) -> tuple[str | list[int], list[Any]]:
    """The engine prompt (text or token ids) and the images of a vLLM-style prompt."""
    if isinstance(prompt, str):
        return prompt, []
    if not isinstance(prompt, dict):
        raise InvalidRequestError(
            f"prompt must be a string or a dict with 'prompt' or 'prompt_token_ids', "
            f"got {type(prompt).__name__}"
        )
    images: list[Any] = []
    media = prompt.get("multi_modal_data") or {}
    for modality, items in media.items():
        if modality != "image":
            raise InvalidRequestError(f"Unsupported multi_modal_data modality {modality!r}")
        images.extend(items if isinstance(items, list) else [items])
    if "prompt_token_ids" in prompt:
        return list(prompt["prompt_token_ids"]), images
    if "prompt" in prompt:
        return prompt["prompt"], images
    raise InvalidRequestError("prompt dict needs 'prompt' or 'prompt_token_ids'")


class AsyncLLMEngine(LLMEngineBase):
    """vLLM's ``AsyncLLMEngine`` API over the shared engine (any backend).

    Build it with ``from_engine_args`` (furiosa-llm's way), ``from_engine`` (around an
    ``AsyncEngine``, e.g. ``get_engine()``) or ``from_llm`` (around a furiosa-llm ``LLM``).
    """

    def __init__(self, engine: AsyncEngine, *, seed: int | None = None, owns_engine: bool = False):
        super().__init__(engine, seed=seed, owns_engine=owns_engine)
        self._seeds = itertools.count()

    async def get_tokenizer(self) -> Any:
        return self.engine.tokenizer

    # ---- generation ----

    def _with_seed(self, params: SamplingParams) -> SamplingParams:
        # The engine seed makes runs repeatable: request k without a seed of its own gets seed + k.
        if self.seed is None or params.seed is not None:
            return params
        return params.clone(seed=self.seed + next(self._seeds))

    def open_generation(
        self, prompt: PromptType, sampling_params: SamplingParams, request_id: str
    ) -> RequestStream[RequestOutput]:
        """Validate and submit now; return the stream of outputs (for ``LLMEngine``)."""
        if not isinstance(sampling_params, SamplingParams):
            raise InvalidRequestError(
                f"sampling_params must be SamplingParams, got {type(sampling_params).__name__}"
            )
        if not isinstance(request_id, str) or not request_id:
            raise InvalidRequestError(f"Request ID {request_id!r} must be a non-empty string")
        engine_prompt, images = split_prompt(prompt)
        params = self._with_seed(sampling_params)
        if isinstance(engine_prompt, str):
            text: str | None = engine_prompt
            prompt_ids = self.engine.tokenize(engine_prompt, add_special_tokens=True)
        else:
            text, prompt_ids = None, engine_prompt
        # Last, since from here on the request id is taken until the stream is closed.
        chunks = self.engine.stream(
            engine_prompt, params=params, request_id=request_id, images=images or None
        )
        assembler = RequestOutputAssembler(
            request_id, text, prompt_ids, params.n, params.output_kind
        )
        return RequestStream(self._assemble(chunks, assembler), chunks.release)

    @staticmethod
    async def _assemble(
        chunks: AsyncGenerator[GenerationChunk, None], assembler: RequestOutputAssembler
    ) -> AsyncGenerator[RequestOutput, None]:
        try:
            async for chunk in chunks:
                output = assembler.add(chunk)
                if output is not None:
                    yield output
        finally:
            await chunks.aclose()

    def generate(
        self,
        prompt: PromptType,
        sampling_params: SamplingParams,
        request_id: str,
    ) -> RequestStream[RequestOutput]:
        """Stream ``RequestOutput`` objects as ``sampling_params.output_kind`` asks.

        Invalid requests raise (a ``ValueError``) at the first iteration, before anything
        is queued. Stopping early (break, ``aclose``, cancellation) aborts the request and
        frees its id before the code that stopped goes on.
        """
        opened: list[RequestStream[RequestOutput]] = []

        async def outputs() -> AsyncGenerator[RequestOutput, None]:
            opened.append(self.open_generation(prompt, sampling_params, request_id))
            async with aclosing(opened[0]) as stream:
                async for output in stream:
                    yield output

        def release() -> None:
            for stream in opened:
                stream.release()

        return RequestStream(outputs(), release)

    # ---- pooling ----

    def prepare_encoding(
        self,
        prompt: PromptType,
        pooling_params: PoolingParams,
        truncate_prompt_tokens: int | None = None,
        lora_request: Any = None,
    ) -> tuple[list[int], PoolingParams]:
        """Validate and tokenize a pooling request now (task, options, context length)."""
        if lora_request is not None:
            raise InvalidRequestError("LoRA adapters are not supported")
        if not isinstance(pooling_params, PoolingParams):
            raise InvalidRequestError(
                f"pooling_params must be PoolingParams, got {type(pooling_params).__name__}"
            )
        params = pooling_params
        if truncate_prompt_tokens is not None:  # vLLM's per-call override
            params = PoolingParams(
                normalize=params.normalize,
                dimensions=params.dimensions,
                truncate_prompt_tokens=truncate_prompt_tokens,
                task=params.task,
            )
        engine_prompt, images = split_prompt(prompt)
        if images:
            raise InvalidRequestError("Pooling requests take no images")
        [prompt_ids] = self.engine.prepare_embed([engine_prompt], params)
        return prompt_ids, params

    async def run_encoding(
        self, prompt_ids: list[int], params: PoolingParams, request_id: str
    ) -> PoolingRequestOutput:
        import torch

        [vector] = await self.engine.embed_prepared([prompt_ids], params, request_id)
        return PoolingRequestOutput(
            request_id=request_id,
            outputs=PoolingOutput(data=torch.tensor(vector)),
            prompt_token_ids=prompt_ids,
            finished=True,
        )

    async def encode(
        self,
        prompt: PromptType,
        pooling_params: PoolingParams,
        request_id: str,
        lora_request: Any = None,
        trace_headers: Any = None,
        priority: Any = None,
        truncate_prompt_tokens: int | None = None,
        tokenization_kwargs: dict[str, Any] | None = None,
    ) -> AsyncGenerator[PoolingRequestOutput, None]:
        """Pool ``prompt`` into one vector: yields one ``PoolingRequestOutput``.

        ``trace_headers``, ``priority`` and ``tokenization_kwargs`` are accepted for vLLM
        compatibility and ignored; a ``lora_request`` is refused.
        """
        if not isinstance(request_id, str) or not request_id:
            raise InvalidRequestError(f"Request ID {request_id!r} must be a non-empty string")
        prompt_ids, params = self.prepare_encoding(
            prompt, pooling_params, truncate_prompt_tokens, lora_request
        )
        yield await self.run_encoding(prompt_ids, params, request_id)

    # ---- control ----

    async def abort(self, request_id: str | Sequence[str]) -> None:
        """Abort request(s); their streams end with ``finish_reason="abort"``."""
        for rid in [request_id] if isinstance(request_id, str) else request_id:
            await self.engine.abort(rid)
