"""``FuriosaLLM``: a LangChain text-completion model (``BaseLLM``) on the shared engine."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import ExitStack, aclosing, closing
from typing import Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM, LangSmithParams
from langchain_core.messages import BaseMessage, get_buffer_string
from langchain_core.outputs import Generation, GenerationChunk, LLMResult

from ..adapter_fields import SamplingOptions
from ..core import AsyncEngine, CompletionSums, Usage
from ..core import GenerationChunk as EngineChunk
from .generations import (
    generation_info,
    hears_tokens,
    logprobs_info,
    ls_sampling,
    params_for_reading,
)
from .loading import LoadsOnInit
from .model_kwargs import ModelKwargs

T = TypeVar("T")


class FuriosaLLM(ModelKwargs, BaseLLM, SamplingOptions, LoadsOnInit):
    """Text completion on FuriosaAI RNGD, or on torch (CPU/CUDA) anywhere else, in-process.

    The prompt is sent as is (no chat template); use ``FuriosaChat`` for conversations.
    With no arguments it serves the bundled default model (SmolLM2-135M-Instruct), sharing
    the engine with any ``FuriosaChat`` on the same model. ``batch``/``abatch`` submit
    every prompt at once, so the engine batches them.

    .. code-block:: python

        from furiosa_integrations import FuriosaLLM

        llm = FuriosaLLM(temperature=0, max_tokens=32)
        llm.invoke("The capital of France is")
        for text in llm.stream("Once upon a time", stop=["\\n"]):
            print(text, end="")
    """

    @property
    def _llm_type(self) -> str:
        return "furiosa"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in SamplingOptions.model_fields}
        return {
            "model": self._model_label(),
            "backend": self.backend,
            "device": self.device,
            **{name: value for name, value in fields.items() if value is not None},
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="furiosa",
            ls_model_name=self._model_label(kwargs.get("model")),
            ls_model_type="llm",
        )
        params.update(ls_sampling(self, stop, kwargs))  # type: ignore[typeddict-item]
        return params

    # ---- token counts: what the engine sends ----

    def get_token_ids(self, text: str) -> list[int]:
        """The token ids the engine sends for the prompt ``text`` (the tokenizer's special
        tokens included, as for every plain prompt)."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        return self._get_engine().prompt_token_ids(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """The prompt tokens of ``invoke(messages)``: a text-completion model gets the
        messages as one buffer string."""
        if tools is not None:
            warnings.warn(
                "A text-completion model sends no tools; counting the messages only.",
                stacklevel=2,
            )
        return self.get_num_tokens(get_buffer_string(messages))

    # ---- the one streaming code path ----

    def _request(
        self,
        prompt: str,
        stop: list[str] | None,
        kwargs: dict[str, Any],
        streaming: bool,
        token_callbacks: bool,
    ) -> tuple[AsyncEngine, dict[str, Any]]:
        """The engine to use and the arguments of its ``stream`` call, for how the tokens
        will be read (``params_for_reading``)."""
        options = dict(kwargs)
        engine = self._get_engine(options.pop("model", None))
        options.pop("stream", None)  # LangChain's own switch, already acted on
        request = self._completion_request(options, stop)
        request["params"] = params_for_reading(request["params"], streaming, token_callbacks)
        return engine, {"prompt": prompt, **request}

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        engine, request = self._request(prompt, stop, kwargs, streaming=True, token_callbacks=True)
        with closing(engine.stream_sync(**request)) as stream:
            for engine_chunk in stream:
                chunk = _to_chunk(engine_chunk, engine.model_name)
                if run_manager is not None:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        engine, request = self._request(prompt, stop, kwargs, streaming=True, token_callbacks=True)
        # aclosing: LangChain's ``aclose`` reaches the engine request at once.
        async with aclosing(engine.stream(**request)) as stream:
            async for engine_chunk in stream:
                chunk = _to_chunk(engine_chunk, engine.model_name)
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    # ---- generate aggregates the streams ----

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        # Tokens go to callbacks only for a single prompt: the one run_manager LangChain
        # passes here belongs to the first prompt.
        callback = run_manager if len(prompts) == 1 else None
        # Several prompts are read round robin, each submitted at its stream's first item:
        # they need their tokens as they come, or they would run one after another.
        callbacks = len(prompts) > 1 or hears_tokens(callback)
        results: list[_Aggregate] = []
        with ExitStack() as stack:
            # Every prompt is checked here, before the first is queued.
            streams = []
            for prompt in prompts:
                engine, request = self._request(prompt, stop, kwargs, False, callbacks)
                streams.append(stack.enter_context(closing(engine.stream_sync(**request))))
                results.append(_Aggregate(engine.model_name))
            for position, chunk in _round_robin(streams):
                if callback is not None and chunk.index == 0:
                    text_chunk = _to_chunk(chunk, results[position].model_name)
                    callback.on_llm_new_token(text_chunk.text, chunk=text_chunk)
                results[position].add(chunk)
        return _llm_result(results, self._model_label(kwargs.get("model")))

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        callback = run_manager if len(prompts) == 1 else None
        callbacks = hears_tokens(callback)

        async def complete(
            model_name: str, stream: AsyncGenerator[EngineChunk, None]
        ) -> _Aggregate:
            result = _Aggregate(model_name)
            async with aclosing(stream):
                async for chunk in stream:
                    if callback is not None and chunk.index == 0:
                        text_chunk = _to_chunk(chunk, model_name)
                        await callback.on_llm_new_token(text_chunk.text, chunk=text_chunk)
                    result.add(chunk)
            return result

        # Every prompt is checked here, before the first is queued (a stream that is never
        # iterated holds nothing).
        streams = []
        for prompt in prompts:
            engine, request = self._request(prompt, stop, kwargs, False, callbacks)
            streams.append((engine.model_name, engine.stream(**request)))
        results = await asyncio.gather(*(complete(*stream) for stream in streams))
        return _llm_result(list(results), self._model_label(kwargs.get("model")))


def _to_chunk(chunk: EngineChunk, model_name: str) -> GenerationChunk:
    info = generation_info(chunk, model_name)
    logprobs = logprobs_info(chunk)
    if logprobs is not None:
        info = {**(info or {}), "logprobs": logprobs}
    return GenerationChunk(text=chunk.text, generation_info=info)


def _round_robin(streams: Sequence[Iterator[T]]) -> Iterator[tuple[int, T]]:
    """Take one item from each live stream in turn.

    Every request is submitted on its stream's first step, so all prompts are in the
    engine together and it batches them; the order we read them in does not slow it.
    """
    live = list(enumerate(streams))
    while live:
        still = []
        for position, stream in live:
            item = next(stream, None)
            if item is not None:
                still.append((position, stream))
                yield position, item
        live = still


class _Aggregate(CompletionSums):
    """One prompt's engine chunks added up per completion, each converted once at the end:
    the generations that adding up the converted chunks gives, without a LangChain chunk
    and its addition for every token."""

    def __init__(self, model_name: str) -> None:
        super().__init__()
        self.model_name = model_name

    def generations(self) -> list[Generation]:
        generations = []
        for _, done in sorted(self.completions.items()):
            chunk = _to_chunk(done.as_chunk(), self.model_name)
            generations.append(Generation(text=chunk.text, generation_info=chunk.generation_info))
        return generations


def _llm_result(results: list[_Aggregate], model_label: str) -> LLMResult:
    usage = Usage()
    for result in results:
        if result.usage is not None:
            usage += result.usage
    generations = [result.generations() for result in results]
    model_name = model_label
    if generations and generations[0] and generations[0][0].generation_info:
        model_name = generations[0][0].generation_info.get("model_name", model_label)
    return LLMResult(
        generations=generations,
        llm_output={"token_usage": usage.token_counts(), "model_name": model_name},
    )


__all__ = ["FuriosaLLM"]
