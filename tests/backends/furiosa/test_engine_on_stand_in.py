"""Our engine driving a native engine that speaks furiosa-llm's protocol.

With no NPU here the native engine is ``StandInNativeEngine`` (our torch engine behind
furiosa-llm's native protocol, answering with the native wheel's own output objects),
so what is checked is our side: translation both ways, stop strings and detokenization
in our engine, aborts, errors, and furiosa-llm's engine API over the furiosa backend.
"""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("furiosa_llm", reason="runs in .venv-furiosa (scripts/setup_furiosa_env.sh)")

from furiosa_llm.sampling_params import SamplingParams as FuriosaSampling

from furiosa_integrations.engine import (
    AsyncEngine,
    AsyncLLMEngine,
    ContextLengthExceededError,
    DuplicateRequestIdError,
    InvalidRequestError,
    LLMEngine,
    PoolingParams,
    RequestOutput,
    RequestOutputKind,
    SamplingParams,
    StructuredOutputsParams,
)
from tests.engine_checks import wait_idle, wait_idle_sync

from .conftest import stand_in_llm

QUESTION = [{"role": "user", "content": "Name three colours."}]
GREEDY = SamplingParams(temperature=0.0, max_tokens=12)


def stand_in(engine: AsyncEngine):  # the StandInNativeEngine below our furiosa backend
    return engine.native.native  # type: ignore[attr-defined]


async def test_greedy_output_matches_the_torch_backend(
    furiosa_chat: AsyncEngine, chat_engine: AsyncEngine
) -> None:
    assert furiosa_chat.backend == "furiosa" and chat_engine.backend == "torch"
    params = GREEDY.clone(logprobs=2)
    ours = await furiosa_chat.generate(messages=QUESTION, params=params, request_id="f-greedy")
    reference = await chat_engine.generate(messages=QUESTION, params=params)
    assert ours.text and ours.text == reference.text
    assert ours.outputs[0].token_ids == reference.outputs[0].token_ids
    assert ours.outputs[0].finish_reason == reference.outputs[0].finish_reason
    assert ours.usage.prompt_tokens == reference.usage.prompt_tokens
    lp_ours, lp_ref = ours.outputs[0].logprobs, reference.outputs[0].logprobs
    assert lp_ours is not None and lp_ref is not None
    for a, b in zip(lp_ours, lp_ref, strict=True):
        assert a.token_id == b.token_id and abs(a.logprob - b.logprob) < 1e-4
        assert [t for t, _, _ in a.top_logprobs] == [t for t, _, _ in b.top_logprobs]
    # What reached the native engine: furiosa-llm's own SamplingParams, as it needs them.
    rid, native = stand_in(furiosa_chat).received[-1]
    assert rid == "f-greedy" and isinstance(native, FuriosaSampling)
    assert (native.max_tokens, native.temperature, native.logprobs) == (12, 0.0, 2)
    assert native.stop is None
    await wait_idle(furiosa_chat)
    await wait_idle(chat_engine)


async def test_stop_strings_are_ours_and_abort_the_native_request(
    furiosa_chat: AsyncEngine, chat_engine: AsyncEngine
) -> None:
    full = (await furiosa_chat.generate(messages=QUESTION, params=GREEDY)).text
    stop = full.split()[1]
    params = GREEDY.clone(stop=[stop])
    result = await furiosa_chat.generate(messages=QUESTION, params=params, request_id="f-stop")
    assert result.outputs[0].finish_reason == "stop" and result.outputs[0].stop_reason == stop
    assert full.startswith(result.text) and stop not in result.text
    _, native = stand_in(furiosa_chat).received[-1]
    assert native.stop is None  # never sent natively
    if len(result.outputs[0].token_ids) < 12:  # ended by our stop string: aborted natively
        assert "f-stop" in stand_in(furiosa_chat).aborted
    await wait_idle(furiosa_chat)
    await wait_idle(chat_engine)


async def test_cancellation_and_early_exit_abort_natively(
    furiosa_chat: AsyncEngine, chat_engine: AsyncEngine
) -> None:
    params = SamplingParams(temperature=0.0, max_tokens=64, ignore_eos=True)
    async for _ in furiosa_chat.stream("Once upon a time", params=params, request_id="f-break"):
        break
    await wait_idle(furiosa_chat)
    assert "f-break" in stand_in(furiosa_chat).aborted
    started = asyncio.Event()

    async def consume() -> None:
        stream = furiosa_chat.stream("Once upon a time", params=params, request_id="f-cancel")
        async for _ in stream:
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(furiosa_chat)
    assert "f-cancel" in stand_in(furiosa_chat).aborted
    # An abort by id: the stream ends with finish_reason "abort".
    chunks = []
    async for chunk in furiosa_chat.stream("Once upon a time", params=params, request_id="f-abort"):
        chunks.append(chunk)
        if len(chunks) == 2:
            await furiosa_chat.abort("f-abort")
    assert chunks[-1].finish_reason == "abort"
    await wait_idle(furiosa_chat)
    await wait_idle(chat_engine)  # the torch engine under the stand-in is idle too


async def test_n_samples_structured_output_and_validation(furiosa_chat: AsyncEngine) -> None:
    result = await furiosa_chat.generate(
        messages=QUESTION, params=GREEDY.clone(n=2), request_id="f-n2"
    )
    assert len(result.outputs) == 2 and result.outputs[0].text == result.outputs[1].text
    sent = [rid for rid, _ in stand_in(furiosa_chat).received[-2:]]
    assert sorted(sent) == ["f-n2:0", "f-n2:1"]  # furiosa-llm runs n=1 requests only
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string", "maxLength": 10}},
        "required": ["colour"],
    }
    structured = SamplingParams(
        temperature=0.0, max_tokens=40,
        structured_outputs=StructuredOutputsParams(json=schema),
    )  # fmt: skip
    shaped = await furiosa_chat.generate(messages=QUESTION, params=structured)
    value = json.loads(shaped.text)
    assert isinstance(value["colour"], str)
    _, native = stand_in(furiosa_chat).received[-1]
    assert native.structured_outputs.json == schema
    with pytest.raises(ContextLengthExceededError):
        furiosa_chat.stream("hi", params=SamplingParams(max_tokens=furiosa_chat.max_model_len))
    first = furiosa_chat.stream("hello", params=GREEDY, request_id="f-dup")
    await first.__anext__()
    with pytest.raises(DuplicateRequestIdError):
        furiosa_chat.stream("hello", params=GREEDY, request_id="f-dup")
    await first.aclose()  # type: ignore[attr-defined]
    await wait_idle(furiosa_chat)


async def test_embeddings_match_the_torch_backend(
    furiosa_embed: AsyncEngine, embed_engine: AsyncEngine
) -> None:
    texts = ["a red apple", "a green pear", "the stock market"]
    ours = await furiosa_embed.embed(texts, request_id="f-embed")
    reference = await embed_engine.embed(texts)
    for a, b in zip(ours, reference, strict=True):
        assert len(a) == 384 and max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5
    sent = [rid for rid, _ in stand_in(furiosa_embed).received[-3:]]
    assert sent == ["f-embed-0", "f-embed-1", "f-embed-2"]  # one native call per prompt
    short = await furiosa_embed.embed(["a red apple"], PoolingParams(dimensions=8, normalize=False))
    assert len(short[0]) == 8
    await wait_idle(furiosa_embed)
    await wait_idle(embed_engine)


async def test_seed_async_api_over_the_furiosa_backend(chat_engine: AsyncEngine) -> None:
    llm = stand_in_llm(chat_engine)
    api = AsyncLLMEngine.from_llm(llm)
    assert api.engine.backend == "furiosa" and api.max_model_len == chat_engine.max_model_len
    prompt = chat_engine.render_chat(QUESTION)
    delta = [
        out
        async for out in api.generate(
            prompt, GREEDY.clone(output_kind=RequestOutputKind.DELTA), "s-delta"
        )
    ]
    final = [
        out
        async for out in api.generate(
            prompt, GREEDY.clone(output_kind=RequestOutputKind.FINAL_ONLY), "s-final"
        )
    ]
    assert len(final) == 1 and final[0].finished
    assert "".join(o.outputs[0].text for o in delta) == final[0].outputs[0].text
    async for _ in api.generate(prompt, GREEDY.clone(max_tokens=40), "s-early"):
        break
    await wait_idle(api.engine)
    assert "s-early" in llm.engine.aborted
    with pytest.raises(InvalidRequestError, match="text-only"):
        await api.generate(
            {"prompt": prompt, "multi_modal_data": {"image": object()}}, GREEDY, "s-img"
        ).__anext__()


def test_seed_sync_api_over_the_furiosa_backend(chat_engine: AsyncEngine) -> None:
    llm = stand_in_llm(chat_engine)
    with LLMEngine.from_llm(llm) as engine:
        for i in range(6):
            engine.add_request(f"q{i}", "Once upon a time", GREEDY)
        engine.abort_request(["q1", "q4"])
        done = {}
        while engine.has_unfinished_requests():
            for out in engine.step():
                if out.finished:
                    assert isinstance(out, RequestOutput)
                    done[out.request_id] = out
        assert set(done) == {"q0", "q2", "q3", "q5"}
        assert len({d.outputs[0].text for d in done.values()}) == 1  # greedy, same prompt
        wait_idle_sync(engine.engine)
    wait_idle_sync(chat_engine)
    assert not llm.shut_down  # built around a caller's LLM: the caller owns it
