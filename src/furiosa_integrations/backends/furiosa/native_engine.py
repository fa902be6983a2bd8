"""Our native engine protocol over furiosa-llm's native engine (its ``NativeEngineLike``).

Token ids in, token ids out: the shared engine above does templates, detokenization and
stop strings, as furiosa-llm's own Python layer does above its native engine. Every
request that ends early (a consumer stops, a task is cancelled, an error) is aborted
in the native engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Collection, Sequence
from typing import Any

from ...core import (
    NativeEngineBase,
    NativeStats,
    NativeStep,
    PoolingParams,
    SamplingParams,
    ScorePair,
    Task,
    Tokenizer,
)
from ...errors import BackendUnavailableError, DuplicateRequestIdError
from .error_translation import map_error
from .output_translation import score_from_output, step_from_output, vector_from_output
from .param_translation import (
    to_furiosa_pooling_params,
    to_furiosa_sampling_params,
    to_furiosa_score_params,
    to_furiosa_structured,
)


def _batch_encoding(token_ids: list[int]) -> Any:
    from furiosa_llm.vllm_compat import BatchEncoding

    return BatchEncoding(input_ids=list(token_ids), attention_mask=[1] * len(token_ids))


class FuriosaNativeEngine(NativeEngineBase):
    """Drives a furiosa-llm native engine (``LLM(...).engine``) through our protocol.

    ``llm`` (optional) is the furiosa-llm ``LLM`` that owns the native engine: kept
    alive here, and used for image requests (its processor and model path).
    """

    def __init__(
        self,
        native: Any,
        *,
        task: Task,
        stop_ids: Collection[int] = (),
        tokenizer: Tokenizer | None = None,
        llm: Any = None,
        supports_images: bool = False,
    ) -> None:
        self.native = native
        self.task = task
        self.stop_ids = frozenset(stop_ids)
        self.tokenizer = tokenizer
        self.llm = llm
        self.supports_images = supports_images
        self.max_model_len = int(native.max_model_len)
        # Ids in flight through us, each with the token of the run that holds it, so a run
        # that ends late never frees (or aborts) a newer request that reuses its id.
        self._ids: dict[str, object] = {}

    # ---- facts and checks ----

    def check_sampling_params(self, params: SamplingParams) -> None:
        """Build furiosa-llm's object now, so what it rejects fails before queuing.

        Each of ``n`` samples is its own native request (furiosa-llm runs n=1 only).
        """
        to_furiosa_sampling_params(params.clone(n=1) if params.n > 1 else params)

    def check_structured_outputs(self, params: SamplingParams) -> None:
        if params.structured_outputs is not None:
            to_furiosa_structured(params.structured_outputs)

    def is_alive(self) -> bool:
        try:
            return bool(self.native.is_alive())
        except Exception:
            return False

    def stats(self) -> NativeStats:
        # furiosa-llm does not expose its queues; count what is in flight through us.
        return NativeStats(
            running=len(self._ids), waiting=0, used_cache_slots=0, request_ids=len(self._ids)
        )

    def abort_request(self, request_id: str) -> None:
        """Abort natively and free the id at once (it may be reused as soon as this returns)."""
        self._ids.pop(request_id, None)
        self.native.abort_request(request_id)

    def shutdown(self) -> None:
        if self.llm is not None and hasattr(self.llm, "shutdown"):
            self.llm.shutdown()
        else:
            self.native.shutdown()

    # ---- generation ----

    def _claim(self, request_id: str) -> object:
        if request_id in self._ids:
            raise DuplicateRequestIdError(f"Request id {request_id!r} is already in flight")
        token = self._ids[request_id] = object()
        return token

    def _holds(self, request_id: str, token: object) -> bool:
        return self._ids.get(request_id) is token

    def _release(self, request_id: str, token: object) -> None:
        if self._holds(request_id, token):
            del self._ids[request_id]

    async def stream_generate(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        request_id: str,
        images: Sequence[Any] = (),
    ) -> AsyncGenerator[NativeStep, None]:
        native_params = to_furiosa_sampling_params(
            params, prompt_len=len(prompt_token_ids), max_model_len=self.max_model_len
        )
        token = self._claim(request_id)
        finished = False
        stream: Any = None
        try:
            try:
                stream = await self._open(prompt_token_ids, native_params, request_id, images)
            except Exception as exc:
                raise map_error(exc, self.native) from exc
            while True:
                try:
                    output = await stream.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise map_error(exc, self.native) from exc
                step = step_from_output(
                    output,
                    stop_ids=self.stop_ids | set(params.stop_token_ids or ()),
                    logprobs=params.logprobs,
                    prompt_len=len(prompt_token_ids),
                )
                finished = step.finish_reason is not None
                yield step
                if finished:
                    return
            finished = True  # the native stream ended without a reason: it was aborted
            yield NativeStep([], finish_reason="abort", num_prompt_tokens=len(prompt_token_ids))
        finally:
            if not finished and self._holds(request_id, token):
                self.native.abort_request(request_id)  # unless abort_request did already
            self._release(request_id, token)
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    pass

    async def _open(
        self, prompt_token_ids: list[int], native_params: Any, request_id: str, images: Any
    ) -> Any:
        inputs = _batch_encoding(prompt_token_ids)
        if not images:
            return self.native.stream_generate(inputs, native_params, request_id)
        if not self.supports_images or self.llm is None:
            raise BackendUnavailableError("This furiosa-llm model does not take images")
        # furiosa-llm's own multimodal path (processor, placeholder expansion, vision
        # encoding, post-expansion context check), exactly as its LLMEngine runs it.
        helper = self._multimodal_helper()
        prompt = {
            "prompt_token_ids": list(prompt_token_ids),
            "multi_modal_data": {"image": list(images)},
        }
        mm_inputs, constraints = helper._preprocess_multimodal_inputs(
            prompt,
            list(prompt_token_ids),
            native_params.max_tokens,
            native_params.min_tokens,
            getattr(self.llm, "mm_processor_kwargs", None),
        )
        return await helper._start_generation(
            request_id, inputs, native_params, mm_inputs, constraints
        )

    def _multimodal_helper(self) -> Any:
        try:
            from furiosa_llm.llm_engine import AsyncLLMEngine as FuriosaAsyncLLMEngine

            helper = FuriosaAsyncLLMEngine.from_llm(self.llm)
            helper._preprocess_multimodal_inputs  # noqa: B018 - present in this version?
            helper._start_generation  # noqa: B018
        except (ImportError, AttributeError) as exc:
            raise BackendUnavailableError(
                "This furiosa-llm version's multimodal API is not supported here"
            ) from exc
        return helper

    # ---- pooling ----

    async def encode(
        self, prompts: list[list[int]], params: PoolingParams, request_id: str
    ) -> list[list[float]]:
        outputs = await self._encode_each(prompts, to_furiosa_pooling_params(params), request_id)
        return [vector_from_output(out) for out in outputs]

    async def score(
        self, pairs: list[ScorePair], params: PoolingParams, request_id: str
    ) -> list[float]:
        """furiosa-llm's own score path: each pair's prompt built as its ``LLM.score``
        builds it (the tokenizer's pair encoding for sequence classifiers, the model's
        score template otherwise), then one native ``encode`` with task ``score`` each."""
        prompts = [self._score_prompt(pair, params) for pair in pairs]
        outputs = await self._encode_each(prompts, to_furiosa_score_params(), request_id)
        return [score_from_output(out) for out in outputs]

    def _score_prompt(self, pair: ScorePair, params: PoolingParams) -> list[int]:
        if self.llm is None:
            return pair.token_ids
        from furiosa_llm.vllm_compat import get_score_prompt, resolve_score_truncation_kwargs

        truncation = resolve_score_truncation_kwargs(
            truncate_prompt_tokens=params.truncate_prompt_tokens, max_model_len=self.max_model_len
        )
        _, prompt = get_score_prompt(
            self.llm.tokenizer,
            pair.query,
            pair.document,
            hf_configs=getattr(self.llm.model_metadata, "hf_configs", None) or {},
            tokenization_kwargs=truncation,
        )
        return list(prompt["prompt_token_ids"])

    async def _encode_each(
        self, prompts: list[list[int]], native_params: Any, request_id: str
    ) -> list[Any]:
        """One native ``encode`` per prompt, concurrently; all stopped if one fails."""
        # furiosa-llm encodes one prompt per native call; ids stay unique per prompt.
        ids = [request_id]
        if len(prompts) > 1:
            ids = [f"{request_id}-{i}" for i in range(len(prompts))]
        tokens = [self._claim(rid) for rid in ids]
        calls = [
            asyncio.ensure_future(self.native.encode(_batch_encoding(p), native_params, rid))
            for p, rid in zip(prompts, ids, strict=True)
        ]
        done = False
        try:
            outputs = await asyncio.gather(*calls)
            done = True
        except Exception as exc:
            raise map_error(exc, self.native) from exc
        finally:
            for call, rid, token in zip(calls, ids, tokens, strict=True):
                if not done:  # failed or cancelled: stop the rest natively
                    call.cancel()
                    if self._holds(rid, token):
                        self.native.abort_request(rid)
                self._release(rid, token)
        return list(outputs)
