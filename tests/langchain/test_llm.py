"""FuriosaLLM (BaseLLM has no standard suite): invoke, stream, batch, async, stop, usage."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import LanguageModelInput
from langchain_core.outputs import Generation
from langchain_core.outputs import GenerationChunk as LCGenerationChunk

from furiosa_integrations.core import GenerationChunk as EngineChunk
from furiosa_integrations.engine import AsyncEngine, InvalidRequestError
from furiosa_integrations.langchain import FuriosaChat, FuriosaLLM
from furiosa_integrations.langchain.llms import _Aggregate, _to_chunk
from tests.engine_checks import wait_idle, wait_idle_sync

COUNT = "1, 2, 3, 4,"  # greedy: " 5, 6, 7, 8, 9, 10, ..."


@pytest.fixture
def llm(chat_engine: AsyncEngine) -> FuriosaLLM:
    return FuriosaLLM(temperature=0, max_tokens=12)


def test_invoke_completes_the_prompt(llm: FuriosaLLM) -> None:
    assert llm.invoke("The capital of France is").strip().startswith("Paris")


def test_stream_is_invoke_in_pieces(llm: FuriosaLLM) -> None:
    pieces = list(llm.stream(COUNT))
    assert len(pieces) > 3
    assert "".join(pieces) == llm.invoke(COUNT)
    assert "".join(pieces).startswith(" 5, 6, 7")


def test_stop_in_constructor_and_per_call(chat_engine: AsyncEngine) -> None:
    llm = FuriosaLLM(temperature=0, max_tokens=20, stop=["7"])
    assert llm.invoke(COUNT) == " 5, 6, "
    # A per-call stop replaces the constructor's.
    assert llm.invoke(COUNT, stop=["6"]) == " 5, "
    result = llm.generate([COUNT], stop=["6"])
    info = result.generations[0][0].generation_info or {}
    assert info["finish_reason"] == "stop"
    assert info["stop_reason"] == "6"


def test_token_usage_in_llm_output(llm: FuriosaLLM, chat_engine: AsyncEngine) -> None:
    result = llm.generate([COUNT, "The capital of France is"], max_tokens=5)
    assert result.llm_output is not None
    usage = result.llm_output["token_usage"]
    prompt_tokens = len(chat_engine.tokenize(COUNT)) + len(
        chat_engine.tokenize("The capital of France is")
    )
    assert usage == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": 10,
        "total_tokens": prompt_tokens + 10,
    }
    assert result.llm_output["model_name"] == chat_engine.model_name
    for generations in result.generations:
        assert generations[0].generation_info == {
            "finish_reason": "length",
            "model_name": chat_engine.model_name,
        }


def test_batch_runs_prompts_together(llm: FuriosaLLM, chat_engine: AsyncEngine) -> None:
    seen: list[int] = []
    original = chat_engine.native.stream_generate

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(chat_engine.stats().running + chat_engine.stats().waiting)
        return original(*args, **kwargs)

    chat_engine.native.stream_generate = spy  # type: ignore[method-assign]
    try:
        prompts: list[LanguageModelInput] = [COUNT, "The capital of France is", "Monday, Tuesday,"]
        outputs = llm.batch(prompts)
    finally:
        del chat_engine.native.stream_generate  # back to the class's method
    assert outputs[0].startswith(" 5, 6")
    assert outputs[1].strip().startswith("Paris")
    assert all(outputs)
    # Every prompt was submitted while the earlier ones were still in the engine.
    assert len(seen) == 3 and max(seen) >= 1
    wait_idle_sync(chat_engine)


def test_on_llm_new_token_sees_every_token(llm: FuriosaLLM) -> None:
    class Collect(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str | list[str | dict[str, Any]], **kwargs: Any) -> None:
            self.tokens.append(cast(str, token))  # chunk.text: always a string

    handler = Collect()
    text = llm.invoke(COUNT, config={"callbacks": [handler]})
    assert len(handler.tokens) > 3
    assert "".join(handler.tokens) == text


def test_per_call_options_override_fields(llm: FuriosaLLM) -> None:
    result = llm.generate([COUNT], max_tokens=3)
    assert result.llm_output is not None
    assert result.llm_output["token_usage"]["completion_tokens"] == 3
    with pytest.raises(ValueError, match="Unknown option"):
        llm.invoke(COUNT, temprature=0.5)
    with pytest.raises(InvalidRequestError, match="top_p"):
        llm.invoke(COUNT, top_p=0)


def test_n_completions(chat_engine: AsyncEngine) -> None:
    llm = FuriosaLLM(temperature=0.8, seed=1, n=2, max_tokens=6)
    result = llm.generate([COUNT])
    assert len(result.generations[0]) == 2
    with pytest.raises(ValueError, match="n=2"):
        list(llm.stream(COUNT))
    wait_idle_sync(chat_engine)


def test_ls_params() -> None:
    llm = FuriosaLLM(temperature=0.3, max_tokens=7, stop=["x"])
    params = llm._get_ls_params()
    assert params == {
        "ls_provider": "furiosa",
        "ls_model_name": "SmolLM2-135M-Instruct",
        "ls_model_type": "llm",
        "ls_temperature": 0.3,
        "ls_max_tokens": 7,
        "ls_stop": ["x"],
    }
    assert llm._get_ls_params(model="other")["ls_model_name"] == "other"


def test_shares_the_engine_with_chat(chat_engine: AsyncEngine) -> None:
    assert FuriosaLLM()._get_engine() is chat_engine
    assert FuriosaChat()._get_engine() is chat_engine


async def test_ainvoke_and_astream(llm: FuriosaLLM) -> None:
    text = await llm.ainvoke(COUNT)
    pieces = [piece async for piece in llm.astream(COUNT)]
    assert "".join(pieces) == text
    assert text.startswith(" 5, 6, 7")
    assert (await llm.ainvoke(COUNT, stop=["7"])) == " 5, 6, "


async def test_abatch_and_agenerate_usage(llm: FuriosaLLM, chat_engine: AsyncEngine) -> None:
    outputs = await llm.abatch([COUNT, "The capital of France is"])
    assert outputs[0].startswith(" 5, 6") and outputs[1].strip().startswith("Paris")
    result = await llm.agenerate([COUNT], max_tokens=4)
    assert result.llm_output is not None
    assert result.llm_output["token_usage"]["completion_tokens"] == 4
    await wait_idle(chat_engine)


async def test_leaving_a_stream_early_aborts_the_request(
    llm: FuriosaLLM, chat_engine: AsyncEngine
) -> None:
    stream = llm.astream(COUNT, max_tokens=200)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_idle(chat_engine)
    for _ in llm.stream(COUNT, max_tokens=200):
        break
    await asyncio.to_thread(wait_idle_sync, chat_engine)


async def test_a_bad_prompt_in_a_batch_queues_nothing(
    llm: FuriosaLLM, chat_engine: AsyncEngine
) -> None:
    """Every prompt of ``generate``/``agenerate`` is checked before the first is queued."""
    submitted: list[int] = []
    original = chat_engine.native.stream_generate

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        submitted.append(1)
        return original(*args, **kwargs)

    chat_engine.native.stream_generate = spy  # type: ignore[method-assign]
    try:
        with pytest.raises(InvalidRequestError, match="non-empty"):
            await asyncio.to_thread(llm.generate, [COUNT, ""])
        with pytest.raises(InvalidRequestError, match="non-empty"):
            await llm.agenerate([COUNT, ""])
    finally:
        del chat_engine.native.stream_generate
    assert submitted == []
    assert (await llm.ainvoke(COUNT)).startswith(" 5, 6")  # the engine serves the next call


def _added_up(chunks: list[EngineChunk], model_name: str) -> list[Generation]:
    """What generate returned before ``_Aggregate`` took engine chunks: every chunk
    converted to LangChain's, the chunks of each completion added up."""
    added: dict[int, LCGenerationChunk] = {}
    for chunk in chunks:
        one = _to_chunk(chunk, model_name)
        added[chunk.index] = added[chunk.index] + one if chunk.index in added else one
    return [
        Generation(text=c.text, generation_info=c.generation_info) for _, c in sorted(added.items())
    ]


def test_generate_adds_up_engine_chunks_as_added_up_langchain_chunks(
    llm: FuriosaLLM, chat_engine: AsyncEngine
) -> None:
    """generate converts each completion once, at the end; its generations are the ones
    that adding up every converted chunk gives: text, logprobs, finish and stop reasons, for
    one completion and for several."""

    def engine_chunks(**options: Any) -> list[EngineChunk]:
        engine, request = llm._request(COUNT, options.pop("stop", None), options, False, True)
        return list(engine.stream_sync(**request))

    requests = [
        engine_chunks(),
        engine_chunks(n=2, temperature=0.9, seed=3, logprobs=2, max_tokens=6),
        engine_chunks(stop=["7"]),
    ]
    assert {c.index for c in requests[1]} == {0, 1} and all(c.logprobs for c in requests[1][:-1])
    assert requests[2][-1].stop_reason == "7"  # the cases cover what they say
    for chunks in requests:
        result = _Aggregate(chat_engine.model_name)
        for chunk in chunks:
            result.add(chunk)
        assert result.generations() == _added_up(chunks, chat_engine.model_name)
