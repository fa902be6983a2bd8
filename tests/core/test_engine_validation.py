"""Bad input is a typed error raised before anything is queued; the engine keeps serving."""

from __future__ import annotations

from typing import Any

import pytest

from furiosa_integrations.engine import (
    AsyncEngine,
    ContextLengthExceededError,
    DuplicateRequestIdError,
    InvalidRequestError,
    PoolingParams,
    SamplingParams,
    UnsupportedTaskError,
)
from tests.engine_checks import wait_idle

INVALID_OPTIONS: list[tuple[str, Any]] = [
    ("n", 0),
    ("max_tokens", 0),
    ("max_tokens", -5),
    ("min_tokens", -1),
    ("temperature", -0.1),
    ("temperature", float("nan")),
    ("top_p", 0.0),
    ("top_p", 1.5),
    ("top_k", -2),
    ("top_k", 1.5),
    ("min_p", -0.1),
    ("min_p", 1.1),
    ("repetition_penalty", 0.0),
    ("presence_penalty", 3.0),
    ("frequency_penalty", -3.0),
    ("seed", "abc"),
    ("stop", [""]),
    ("stop", [1]),
    ("stop_token_ids", [-1]),
    ("logprobs", -1),
    ("logprobs", 100),
    ("extra_args", [("kv_transfer_params", {})]),
    ("extra_args", {1: "x"}),
]


@pytest.mark.parametrize(("option", "value"), INVALID_OPTIONS)
def test_invalid_sampling_option_names_the_option(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option) as info:
        SamplingParams(**{option: value})
    assert isinstance(info.value, InvalidRequestError)


def test_extra_args_none_is_accepted_as_empty() -> None:
    assert SamplingParams(extra_args=None).extra_args == {}  # type: ignore[arg-type]


def test_min_tokens_above_max_tokens() -> None:
    with pytest.raises(ValueError, match="min_tokens"):
        SamplingParams(max_tokens=4, min_tokens=5)


async def test_mutated_params_are_checked_at_submit(chat_engine: AsyncEngine) -> None:
    params = SamplingParams(max_tokens=4)
    params.temperature = -1.0  # dataclasses allow this; the engine checks again
    with pytest.raises(InvalidRequestError, match="temperature"):
        chat_engine.stream("hello", params=params)
    assert chat_engine.stats().request_ids == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt": ""},
        {"prompt": []},
        {"prompt": 42},
        {"prompt": [1, "a"]},
        {"prompt": [-3]},
        {"messages": []},
        {"messages": ["hi"]},
        {"messages": [{"role": "wizard", "content": "hi"}]},
        {"messages": [{"role": "user", "content": 5}]},
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
            ]
        },
        {},
        {"prompt": "hi", "messages": [{"role": "user", "content": "hi"}]},
    ],
)
async def test_bad_prompts_rejected_before_queuing(
    chat_engine: AsyncEngine, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidRequestError):
        chat_engine.stream(**kwargs, params=SamplingParams(max_tokens=2))
    assert chat_engine.stats().request_ids == 0


async def test_image_content_is_refused_on_text_only_model(chat_engine: AsyncEngine) -> None:
    with pytest.raises(InvalidRequestError, match="text-only"):
        chat_engine.stream(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                }
            ]
        )


async def test_context_length_error(chat_engine: AsyncEngine) -> None:
    limit = chat_engine.max_model_len
    prompt_ids = [100] * (limit - 10)
    with pytest.raises(ContextLengthExceededError) as info:
        chat_engine.stream(prompt_ids, params=SamplingParams(max_tokens=20))
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.max_model_len, err.prompt_tokens, err.max_tokens) == (limit, limit - 10, 20)
    assert str(limit) in str(err) and str(limit - 10) in str(err)
    with pytest.raises(ContextLengthExceededError):
        chat_engine.stream([100] * (limit + 1), params=SamplingParams(max_tokens=None))
    assert chat_engine.stats().request_ids == 0


async def test_duplicate_request_id(chat_engine: AsyncEngine) -> None:
    params = SamplingParams(max_tokens=50, temperature=0, ignore_eos=True)
    stream = chat_engine.stream("Once upon a time", params=params, request_id="dup")
    first = await stream.__anext__()
    assert first.token_ids
    with pytest.raises(DuplicateRequestIdError):
        chat_engine.stream("Once upon a time", params=params, request_id="dup")
    rest = [c async for c in stream]
    assert rest[-1].finish_reason == "length"
    await wait_idle(chat_engine)


async def test_task_mismatch(chat_engine: AsyncEngine, embed_engine: AsyncEngine) -> None:
    with pytest.raises(UnsupportedTaskError, match="embedding"):
        chat_engine_embed = embed_engine.stream("hello")  # generation on a pooling model
        del chat_engine_embed
    with pytest.raises(UnsupportedTaskError, match="generation"):
        await chat_engine.embed(["hello"])  # pooling on a generation model


@pytest.mark.parametrize("texts", [[], "just a string", [1, 2], ["ok", None]])
async def test_bad_embedding_input(embed_engine: AsyncEngine, texts: Any) -> None:
    with pytest.raises(InvalidRequestError):
        await embed_engine.embed(texts)


@pytest.mark.parametrize(
    ("option", "value"), [("dimensions", 0), ("truncate_prompt_tokens", 0), ("task", "classify")]
)
def test_invalid_pooling_option(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        PoolingParams(**{option: value})


async def test_engine_still_serves_after_bad_input(chat_engine: AsyncEngine) -> None:
    for bad in ({"prompt": ""}, {"prompt": [-1]}):
        with pytest.raises(InvalidRequestError):
            chat_engine.stream(**bad)
    result = await chat_engine.generate(
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        params=SamplingParams(max_tokens=16, temperature=0),
    )
    assert "Paris" in result.text
