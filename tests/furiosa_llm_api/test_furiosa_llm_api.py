"""furiosa-llm's public engine API (EngineArgs, AsyncLLMEngine, LLMEngine) on the torch backend.

Real engine, real default models; greedy and short generations. Every path ends with
the engine holding no request id, slot or queued work.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
from pathlib import Path
from typing import TypedDict, cast

import pytest
import torch

from furiosa_integrations.engine import (
    AsyncEngine,
    AsyncEngineArgs,
    AsyncLLMEngine,
    CompletionOutput,
    ContextLengthExceededError,
    DuplicateRequestIdError,
    EngineArgs,
    EngineDeadError,
    InvalidRequestError,
    LLMEngine,
    PoolingParams,
    PoolingRequestOutput,
    RequestOutput,
    RequestOutputKind,
    SamplingParams,
    UnsupportedTaskError,
)
from furiosa_integrations.furiosa_llm_api.engine_args import CACHE_DIR
from furiosa_integrations.furiosa_llm_api.engine_from_args import choose_backend, infer_task
from tests.engine_checks import wait_idle, wait_idle_sync


class Greedy(TypedDict):
    temperature: float
    max_tokens: int


GREEDY = Greedy(temperature=0.0, max_tokens=8)


@pytest.fixture(scope="module")
def api(chat_engine: AsyncEngine) -> AsyncLLMEngine:
    return AsyncLLMEngine.from_engine_args(AsyncEngineArgs(backend="torch"))


@pytest.fixture(scope="module")
def embed_api(embed_engine: AsyncEngine) -> AsyncLLMEngine:
    return AsyncLLMEngine.from_engine_args(AsyncEngineArgs(model="default", task="embed"))


def chat_prompt(engine: AsyncEngine, question: str) -> str:
    return engine.render_chat([{"role": "user", "content": question}])


async def collect(api: AsyncLLMEngine, prompt, params, request_id) -> list[RequestOutput]:
    return [out async for out in api.generate(prompt, params, request_id)]


# ---- EngineArgs ----


def test_engine_args_defaults_are_furiosa_llms() -> None:
    args = EngineArgs()
    assert args.model == "default"
    assert (args.revision, args.tokenizer, args.seed, args.devices) == (None, None, None, None)
    assert (args.pipeline_parallel_size, args.data_parallel_size) == (None, None)
    assert args.tokenizer_mode == "auto"
    assert args.cache_dir == CACHE_DIR and CACHE_DIR.parts[-2:] == ("furiosa", "llm")
    assert (args.npu_queue_limit, args.max_processing_samples, args.spare_blocks_ratio) == (
        None,
        None,
        None,
    )
    assert args.enable_jit_compilation is False
    assert (args.jit_threshold, args.jit_max_workers, args.jit_unit_size) == (5, 15, 8)
    assert (args.backend, args.device, args.task) == ("auto", None, "auto")


@pytest.mark.parametrize("cls", [EngineArgs, AsyncEngineArgs])
def test_engine_args_cli_round_trip(cls: type[EngineArgs]) -> None:
    parser = cls.add_cli_args(argparse.ArgumentParser())
    assert cls.from_cli_args(parser.parse_args([])) == cls()
    argv = [
        "--model", "/models/llama", "--revision", "v1", "--tokenizer", "/tok",
        "--tokenizer-mode", "slow", "--seed", "7", "--devices", "npu:0,npu:1",
        "--pipeline-parallel-size", "2", "--data-parallel-size", "4", "--cache-dir", "/tmp/c",
        "--npu-queue-limit", "3", "--max-processing-samples", "64",
        "--spare-blocks-ratio", "0.25", "--enable-jit-compilation", "--jit-threshold", "9",
        "--jit-max-workers", "2", "--jit-unit-size", "4", "--backend", "furiosa",
        "--device", "cpu", "--task", "generate", "--fxb", "/a.fxb", "--max-model-len", "512",
    ]  # fmt: skip
    args = cls.from_cli_args(parser.parse_args(argv))
    assert isinstance(args, cls)
    assert args == cls(
        model="/models/llama", revision="v1", tokenizer="/tok", tokenizer_mode="slow", seed=7,
        devices="npu:0,npu:1", pipeline_parallel_size=2, data_parallel_size=4,
        cache_dir=Path("/tmp/c"), npu_queue_limit=3, max_processing_samples=64,
        spare_blocks_ratio=0.25, enable_jit_compilation=True, jit_threshold=9,
        jit_max_workers=2, jit_unit_size=4, backend="furiosa", device="cpu", task="generate",
        fxb="/a.fxb", max_model_len=512,
    )  # fmt: skip
    # furiosa-llm's flag took any string ("false" was truthy); this one is a real boolean.
    off = cls.from_cli_args(parser.parse_args(["--no-enable-jit-compilation"]))
    assert off.enable_jit_compilation is False


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("jit_unit_size", 1, "jit_unit_size must be >= 2, got 1"),
        ("jit_threshold", 0, "jit_threshold must be >= 1, got 0"),
        ("jit_max_workers", 0, "jit_max_workers must be >= 1, got 0"),
        ("backend", "tpu", "backend must be one of"),
        ("task", "score", "task must be one of"),
        ("tokenizer_mode", "fast", "tokenizer_mode must be"),
        ("max_processing_samples", 0, "max_processing_samples must be a positive integer"),
    ],
)
def test_engine_args_validation(option: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EngineArgs(**{option: value})  # type: ignore[arg-type]
    parser = EngineArgs.add_cli_args(argparse.ArgumentParser())
    if option.startswith("jit_"):  # the CLI goes through the same checks
        flag = "--" + option.replace("_", "-")
        with pytest.raises(ValueError, match=message):
            EngineArgs.from_cli_args(parser.parse_args([flag, str(value)]))


def test_backend_and_task_choice(embed_engine: AsyncEngine) -> None:
    assert choose_backend(EngineArgs()) == "torch"  # the defaults have no RNGD build
    assert choose_backend(EngineArgs(backend="furiosa")) == "furiosa"
    # No NPU on this machine: auto means torch for any model.
    assert choose_backend(EngineArgs(model="/models/some-llm")) == "torch"
    assert infer_task(EngineArgs()) == "generate"
    assert infer_task(EngineArgs(model="all-MiniLM-L6-v2")) == "embed"
    model_dir = str(embed_engine.tokenizer.name_or_path)
    assert infer_task(EngineArgs(model=model_dir)) == "embed"


def test_from_engine_args_shares_the_engine(
    api: AsyncLLMEngine, chat_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    assert api.engine is chat_engine
    assert AsyncLLMEngine.from_engine(chat_engine).engine is chat_engine
    with caplog.at_level(logging.WARNING):
        other = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(devices="npu:0", jit_unit_size=4))
    assert other.engine is chat_engine
    assert "ignores furiosa-only options" in caplog.text and "devices" in caplog.text
    slow = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(tokenizer_mode="slow"))
    assert slow.engine.native is chat_engine.native and slow.engine is not chat_engine


# ---- AsyncLLMEngine.generate ----


async def test_generate_output_kinds_agree(api: AsyncLLMEngine, chat_engine: AsyncEngine) -> None:
    prompt = chat_prompt(chat_engine, "Name a colour.")
    cumulative = await collect(
        api, prompt, SamplingParams(**GREEDY, output_kind=RequestOutputKind.CUMULATIVE), "k-cum"
    )
    delta = await collect(
        api, prompt, SamplingParams(**GREEDY, output_kind=RequestOutputKind.DELTA), "k-delta"
    )
    final = await collect(
        api, prompt, SamplingParams(**GREEDY, output_kind=RequestOutputKind.FINAL_ONLY), "k-final"
    )
    text = cumulative[-1].outputs[0].text
    assert text and len(cumulative) > 1 and len(final) == 1
    assert final[0].outputs[0].text == text
    assert "".join(o.outputs[0].text for o in delta) == text
    # Cumulative texts grow; every output but the last is unfinished.
    texts = [o.outputs[0].text for o in cumulative]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    assert [o.finished for o in cumulative] == [False] * (len(cumulative) - 1) + [True]
    assert [o.finished for o in delta][-1] and not any(o.finished for o in delta[:-1])
    last = cumulative[-1]
    assert last.request_id == "k-cum" and last.prompt == prompt
    assert last.prompt_token_ids == chat_engine.tokenize(prompt)
    assert last.num_output_tokens == len(last.outputs[0].token_ids) == 8
    assert last.outputs[0].finish_reason == "length"
    assert sum(o.num_output_tokens for o in delta) == 8
    await wait_idle(chat_engine)


async def test_generate_token_prompt_n_logprobs_stop(
    api: AsyncLLMEngine, chat_engine: AsyncEngine
) -> None:
    ids = chat_engine.tokenize(chat_prompt(chat_engine, "Count: one, two,"))
    outs = await collect(
        api, {"prompt_token_ids": ids}, SamplingParams(**GREEDY, n=2, logprobs=2), "k-n2"
    )
    final = outs[-1]
    assert final.prompt is None and final.prompt_token_ids == ids
    assert [c.index for c in final.outputs] == [0, 1]
    assert final.outputs[0].text == final.outputs[1].text  # greedy: both samples agree
    for completion in final.outputs:
        assert completion.logprobs is not None and len(completion.logprobs) == 8
        for token, entry in zip(completion.token_ids, completion.logprobs, strict=True):
            assert token in entry and entry[token].logprob <= 0.0
            assert {lp.rank for lp in entry.values()} >= {1, 2}
    # A stop string taken from the greedy text ends it there (matched by our engine).
    full = final.outputs[0].text
    stop = full.strip().split()[1] if len(full.split()) > 1 else full.strip()[-2:]
    stopped = await collect(
        api, {"prompt_token_ids": ids}, SamplingParams(**GREEDY, stop=[stop]), "k-stop"
    )
    done = stopped[-1].outputs[0]
    assert done.finish_reason == "stop" and done.stop_reason == stop
    assert stop not in done.text and full.startswith(done.text)
    await wait_idle(chat_engine)


async def test_generate_validates_before_dispatch(
    api: AsyncLLMEngine, embed_api: AsyncLLMEngine, chat_engine: AsyncEngine
) -> None:
    gen = api.generate("hello", SamplingParams(max_tokens=chat_engine.max_model_len), "k-long")
    with pytest.raises(ContextLengthExceededError):
        await gen.__anext__()
    with pytest.raises(UnsupportedTaskError):
        await embed_api.generate("hello", SamplingParams(), "k-task").__anext__()
    with pytest.raises(InvalidRequestError):
        await api.generate("hello", SamplingParams(), 42).__anext__()  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="text-only"):
        image = {"prompt": "hi", "multi_modal_data": {"image": object()}}
        await api.generate(image, SamplingParams(), "k-img").__anext__()
    with pytest.raises(ValueError):
        SamplingParams(temperature=-1)
    # A request id in flight cannot be reused; once it finishes it can.
    first = api.generate("Once upon a time", SamplingParams(**GREEDY), "k-dup")
    await first.__anext__()
    with pytest.raises(DuplicateRequestIdError):
        await api.generate("hello", SamplingParams(**GREEDY), "k-dup").__anext__()
    async for _ in first:
        pass
    assert (await collect(api, "hello", SamplingParams(**GREEDY), "k-dup"))[-1].finished
    await wait_idle(chat_engine)


async def test_no_request_id_left_on_any_exit(
    api: AsyncLLMEngine, chat_engine: AsyncEngine
) -> None:
    params = SamplingParams(temperature=0.0, max_tokens=64, ignore_eos=True)
    # A consumer that stops early.
    async for _ in api.generate("Tell me a story.", params, "k-break"):
        break
    await wait_idle(chat_engine)
    # A consumer whose task is cancelled.
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in api.generate("Tell me a story.", params, "k-cancel"):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(chat_engine)
    # An abort from elsewhere: the stream ends with finish_reason "abort".
    outputs = []
    async for out in api.generate("Tell me a story.", params, "k-abort"):
        outputs.append(out)
        if len(outputs) == 2:
            await api.abort("k-abort")
    assert outputs[-1].finished and outputs[-1].outputs[0].finish_reason == "abort"
    assert len(outputs[-1].outputs[0].token_ids) < 64
    # A generator closed explicitly, and one never iterated at all.
    gen = api.generate("Tell me a story.", params, "k-close")
    await gen.__anext__()
    await gen.aclose()
    api.generate("never started", params, "k-never")
    await wait_idle(chat_engine)
    # Every id above is free again.
    for rid in ("k-break", "k-cancel", "k-abort", "k-close", "k-never"):
        assert (await collect(api, "hi", SamplingParams(**GREEDY), rid))[-1].finished
    await wait_idle(chat_engine)


# ---- AsyncLLMEngine.encode ----


async def test_encode(
    embed_api: AsyncLLMEngine, embed_engine: AsyncEngine, api: AsyncLLMEngine
) -> None:
    outputs = [o async for o in embed_api.encode("a red apple", PoolingParams(), "e-1")]
    assert len(outputs) == 1
    out = outputs[0]
    assert isinstance(out, PoolingRequestOutput) and out.finished and out.request_id == "e-1"
    assert isinstance(out.outputs.data, torch.Tensor) and out.outputs.data.shape == (384,)
    expected = (await embed_engine.embed(["a red apple"]))[0]
    assert torch.allclose(out.outputs.data, torch.tensor(expected), atol=1e-5)
    assert out.prompt_token_ids == embed_engine.tokenizer("a red apple")["input_ids"]
    # Token-id prompts and vLLM's per-call truncation.
    ids = out.prompt_token_ids
    [same] = [o async for o in embed_api.encode({"prompt_token_ids": ids}, PoolingParams(), "e-2")]
    assert torch.allclose(same.outputs.data, out.outputs.data, atol=1e-5)
    [cut] = [
        o
        async for o in embed_api.encode(
            "a red apple", PoolingParams(), "e-3", truncate_prompt_tokens=2
        )
    ]
    assert len(cut.prompt_token_ids) == 2 and cut.prompt_token_ids[0] == ids[0]
    with pytest.raises(UnsupportedTaskError):
        await api.encode("x", PoolingParams(), "e-4").__anext__()
    with pytest.raises(ContextLengthExceededError):
        long = " ".join(["word"] * 1000)
        await embed_api.encode(long, PoolingParams(truncate_prompt_tokens=None), "e-5").__anext__()
    with pytest.raises(InvalidRequestError, match="LoRA"):
        await embed_api.encode("x", PoolingParams(), "e-6", lora_request=object()).__anext__()
    await wait_idle(embed_engine)


# ---- LLMEngine ----


def test_llm_engine_step_16_concurrent_with_aborts(chat_engine: AsyncEngine) -> None:
    prompts = [chat_prompt(chat_engine, q) for q in ("Say hi.", "Name a fruit.", "Count to 3.")]
    params = SamplingParams(temperature=0.0, max_tokens=12)
    expected = {p: chat_engine.generate_sync(p, params=params).outputs[0].text for p in prompts}
    aborted = {"r3", "r7", "r8", "r12", "r15"}
    with LLMEngine.from_engine_args(EngineArgs()) as llm:
        for i in range(16):
            llm.add_request(f"r{i}", prompts[i % 3], params)
        assert llm.get_num_unfinished_requests() == 16
        llm.abort_request(["r3", "r7"])
        llm.abort_request("r8")
        steps = 0
        seen: dict[str, int] = {}
        finished: dict[str, RequestOutput] = {}
        while llm.has_unfinished_requests():
            outputs = llm.step()
            steps += 1
            if steps == 2:
                llm.abort_request(["r12", "r15", "no-such-id"])
            for out in outputs:
                assert isinstance(out, RequestOutput)
                seen[out.request_id] = seen.get(out.request_id, 0) + 1
                if out.finished:
                    finished[out.request_id] = out
        assert steps > 1  # outputs arrive over several steps
        assert set(finished) == {f"r{i}" for i in range(16)} - aborted
        for rid, out in finished.items():
            completion: CompletionOutput = out.outputs[0]
            assert completion.text == expected[prompts[int(rid[1:]) % 3]]
            assert completion.finish_reason in ("length", "stop")
        assert not set(seen) & {"r3", "r7", "r8"}  # aborted before any step: never seen
        assert llm.step() == []  # nothing unfinished: returns at once
        wait_idle_sync(chat_engine)
    wait_idle_sync(chat_engine)


def test_llm_engine_requests_and_errors(
    chat_engine: AsyncEngine, embed_engine: AsyncEngine
) -> None:
    llm = LLMEngine.from_engine(chat_engine)
    params = SamplingParams(temperature=0.0, max_tokens=4)
    llm.add_request("x", "Hello", params)
    with pytest.raises(DuplicateRequestIdError):
        llm.add_request("x", "Hello", params)
    with pytest.raises(ContextLengthExceededError):
        llm.add_request("y", "Hello", SamplingParams(max_tokens=chat_engine.max_model_len))
    with pytest.raises(UnsupportedTaskError):
        llm.add_request("y", "Hello", PoolingParams())
    with pytest.raises(InvalidRequestError):
        llm.add_request("y", "Hello", {"max_tokens": 3})  # type: ignore[arg-type]
    assert llm.request_ids == {"x"}
    outputs: list[RequestOutput] = []
    while llm.has_unfinished_requests():
        outputs += cast(list[RequestOutput], llm.step())
    assert outputs[-1].finished and outputs[-1].request_id == "x"
    # Output kinds hold here too: FINAL_ONLY gives exactly one output.
    llm.add_request("f", "Hello", params.clone(output_kind=RequestOutputKind.FINAL_ONLY))
    finals: list[RequestOutput] = []
    while llm.has_unfinished_requests():
        finals += cast(list[RequestOutput], llm.step())
    assert len(finals) == 1 and finals[0].outputs[0].text == outputs[-1].outputs[0].text
    llm.shutdown()
    with pytest.raises(EngineDeadError):
        llm.add_request("z", "Hello", params)
    assert chat_engine.is_alive()  # a shared engine outlives the wrapper
    # Pooling requests on an embedding model.
    with LLMEngine.from_engine(embed_engine) as pool:
        pool.add_request("p1", "a red apple", PoolingParams())
        pool.add_request("p2", {"prompt": "a green pear"}, PoolingParams(normalize=False))
        with pytest.raises(UnsupportedTaskError):
            pool.add_request("p3", "x", params)
        got: dict[str, PoolingRequestOutput] = {}
        while pool.has_unfinished_requests():
            got.update({o.request_id: o for o in pool.step()})  # type: ignore[misc]
        assert set(got) == {"p1", "p2"}
        assert abs(float(got["p1"].outputs.data.norm()) - 1.0) < 1e-4
        assert abs(float(got["p2"].outputs.data.norm()) - 1.0) > 1e-3
    wait_idle_sync(chat_engine)
    wait_idle_sync(embed_engine)


def test_images_rejected_by_a_text_only_model(chat_engine: AsyncEngine) -> None:
    assert chat_engine.supports_images is False
    pixel = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5E"
        "rkJggg=="
    )
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pixel}"}},
            ],
        }
    ]
    with pytest.raises(InvalidRequestError, match="text-only model: image inputs are not"):
        chat_engine.stream(messages=messages)
    with LLMEngine.from_engine(chat_engine) as llm, pytest.raises(InvalidRequestError):
        image_prompt = {"prompt": "hi", "multi_modal_data": {"image": [pixel]}}
        llm.add_request("img", image_prompt, SamplingParams())
    wait_idle_sync(chat_engine)
