"""The remote backend's translations, without a server (the fast tier): request bodies,
the event stream, chunks to steps, error mapping, URLs and secrets, retry waits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from furiosa_integrations.backends.remote import RemoteConfig
from furiosa_integrations.backends.remote.capabilities import check_sampling_params
from furiosa_integrations.backends.remote.http_errors import (
    error_for_status,
    error_from_event,
    server_message,
)
from furiosa_integrations.backends.remote.retry import RetryPolicy
from furiosa_integrations.backends.remote.sse import EventStream
from furiosa_integrations.backends.remote.wire import (
    StepDecoder,
    completion_body,
    embedding_body,
    vectors_from_response,
)
from furiosa_integrations.composition import resolve_backend
from furiosa_integrations.engine import PoolingParams, SamplingParams, StructuredOutputsParams
from furiosa_integrations.errors import (
    InvalidRequestError,
    MalformedResponseError,
    ServerAuthenticationError,
    ServerError,
    ServerOverloadedError,
    ServerRequestError,
    ServerUnavailableError,
)

CONFIG = RemoteConfig("http://127.0.0.1:8000/v1", api_key="sk-secret-1234")


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


def _events(*lines: str) -> tuple[list[dict[str, object]], EventStream]:
    stream = EventStream(_lines(*lines), "server")

    async def collect() -> list[dict[str, object]]:
        return [payload async for payload in stream]

    return asyncio.run(collect()), stream


def test_completion_body_sends_every_option_and_no_stop_strings() -> None:
    params = SamplingParams(
        max_tokens=None, temperature=0.0, top_k=0, stop=["x"], stop_token_ids=[7],
        logprobs=2, structured_outputs=StructuredOutputsParams(structural_tag={"type": "t"}),
        extra_args={"priority": 1},
    )  # fmt: skip
    body = completion_body([1, 2, 3], params, model="m", max_model_len=10, eos_token_ids={2})
    assert body["prompt"] == [1, 2, 3] and body["stream"] is True and body["n"] == 1
    assert body["stream_options"] == {"include_usage": True} and body["return_token_ids"]
    assert body["max_tokens"] == 7  # None: the room left in the context
    assert (body["temperature"], body["top_k"], body["top_p"], body["min_p"]) == (0.0, -1, 1.0, 0.0)
    assert body["stop_token_ids"] == [2, 7]  # explicit ids replace the server's EOS default
    assert "stop" not in body and body["priority"] == 1
    assert body["logprobs"] == 2 and body["return_tokens_as_token_ids"] is True
    assert body["structured_outputs"] == {"structural_tag": '{"type": "t"}'}  # a JSON string
    plain = completion_body(
        [1], SamplingParams(ignore_eos=True), model="m", max_model_len=9, eos_token_ids={2}
    )
    assert plain["stop_token_ids"] == [] and plain["max_tokens"] == 16
    assert "seed" not in plain and "presence_penalty" not in plain


def test_embedding_body_per_server() -> None:
    off = PoolingParams(normalize=False, dimensions=8)
    assert embedding_body([[1]], off, model="m", kind="vllm")["use_activation"] is False
    furiosa = embedding_body([[1]], off, model="m", kind="furiosa-llm")
    assert furiosa["normalize"] is False and furiosa["dimensions"] == 8
    assert "normalize" not in embedding_body(
        [[1]], PoolingParams(), model="m", kind="openai-compatible"
    )


def test_furiosa_llm_refusals_and_extra_args() -> None:
    for params in (
        SamplingParams(presence_penalty=0.1),
        SamplingParams(frequency_penalty=0.1),
        SamplingParams(seed=1, temperature=0.7),
        SamplingParams(extra_args={"logit_bias": {"1": 2}}),
    ):
        with pytest.raises(InvalidRequestError, match="furiosa-llm"):
            check_sampling_params(params, "furiosa-llm")
        check_sampling_params(params, "vllm")  # vLLM honours them
    check_sampling_params(SamplingParams(seed=1, temperature=0.0), "furiosa-llm")  # greedy
    with pytest.raises(InvalidRequestError, match="extra_args may not set 'stream'"):
        check_sampling_params(SamplingParams(extra_args={"stream": False}), "vllm")


def test_event_stream() -> None:
    events, stream = _events('data: {"a": 1}', "", ": comment", "event: x", "data: [DONE]", "")
    assert events == [{"a": 1}] and stream.done
    events, stream = _events('data: {"a": 1}', "")  # no [DONE]: the caller decides
    assert events == [{"a": 1}] and not stream.done
    for bad in ("garbage", 'data: {"a": ', "data: [1, 2]"):
        with pytest.raises(MalformedResponseError):
            _events(bad, "")


def test_step_decoder_holds_the_last_step_for_usage() -> None:
    decoder = StepDecoder(3, {2}, None, "server")
    assert decoder.feed({"id": "cmpl-1", "choices": [{"index": 0, "token_ids": [5]}]})[
        0
    ].new_token_ids == [5]
    assert (
        decoder.feed({"choices": [{"index": 0, "token_ids": [2], "finish_reason": "stop"}]}) == []
    )
    [last] = decoder.feed({"choices": [], "usage": {"prompt_tokens_details": {"cached_tokens": 2}}})
    assert (last.finish_reason, last.stop_token_id, last.num_cached_tokens) == ("stop", 2, 2)
    assert decoder.server_id == "cmpl-1"
    other = StepDecoder(3, {2}, None, "server")
    other.feed({"choices": [{"index": 0, "token_ids": [9], "finish_reason": "length"}]})
    [held] = other.finish()  # a server that sends no usage chunk
    assert held.finish_reason == "length" and held.stop_token_id is None
    odd = StepDecoder(3, set(), None, "server")
    [step] = (
        odd.feed({"choices": [{"index": 0, "token_ids": [], "finish_reason": "weird"}]})
        or odd.finish()
    )
    assert step.finish_reason == "abort"
    with pytest.raises(MalformedResponseError, match="return_token_ids"):
        odd.feed({"choices": [{"index": 0, "text": "hi"}]})


def test_step_decoder_logprobs_by_token_id() -> None:
    decoder = StepDecoder(1, set(), 1, "server")
    top = [{"token_id:5": -0.5, "token_id:6": -1.5}]
    logprobs = {"token_logprobs": [-0.5], "top_logprobs": top}
    chunk = {"choices": [{"index": 0, "token_ids": [5], "logprobs": logprobs}]}
    [step] = decoder.feed(chunk)
    assert step.logprobs is not None and step.logprobs[0].logprob == -0.5
    assert step.logprobs[0].top == [(5, -0.5)]  # the top k=1


def test_error_mapping_keeps_the_servers_message_and_hides_the_key() -> None:
    assert server_message(b'{"error": {"message": "bad"}}') == "bad"
    assert server_message(b'{"object": "error", "message": "worse"}') == "worse"
    assert server_message(b'{"detail": "worst"}') == "worst"
    assert server_message(b"plain text") == "plain text"
    cases = {401: ServerAuthenticationError, 404: ServerRequestError, 429: ServerOverloadedError,
             500: ServerError, 503: ServerUnavailableError}  # fmt: skip
    for status, kind in cases.items():
        error = error_for_status(status, "echo sk-secret-1234", CONFIG, "/v1/completions")
        assert type(error) is kind and error.status_code == status  # type: ignore[attr-defined]
        assert "sk-secret-1234" not in str(error) and "echo ***" in str(error)
    assert isinstance(error_for_status(400, "x", CONFIG, "/r"), InvalidRequestError)
    event = error_from_event({"error": {"message": "regex bad", "code": 400}}, CONFIG, "/r")
    assert isinstance(event, ServerRequestError) and "regex bad" in str(event)


def test_config_and_backend_choice() -> None:
    assert CONFIG.root == "http://127.0.0.1:8000" and CONFIG.url("/v1/models").endswith(
        ":8000/v1/models"
    )
    assert CONFIG.request_headers()["Authorization"] == "Bearer sk-secret-1234"
    assert "sk-secret" not in repr(CONFIG) and "sk-secret" not in json.dumps(CONFIG.sharing_key())
    with pytest.raises(InvalidRequestError):
        RemoteConfig("ftp://host")
    assert resolve_backend("auto", base_url="http://h:1") == "remote"
    with pytest.raises(InvalidRequestError, match="needs base_url"):
        resolve_backend("remote")
    with pytest.raises(InvalidRequestError, match="not backend='torch'"):
        resolve_backend("torch", base_url="http://h:1")


def test_retry_waits() -> None:
    policy = RetryPolicy(max_retries=3)
    assert policy.delay(0, "2") == 2.0 and policy.delay(0, "600") == policy.cap
    assert 0.375 <= policy.delay(0) <= 0.625 and 1.5 <= policy.delay(2) <= 2.5
    assert vectors_from_response(
        {"data": [{"index": 1, "embedding": [1]}, {"index": 0, "embedding": [0]}]}, 2, "s"
    ) == [[0.0], [1.0]]
    with pytest.raises(MalformedResponseError):
        vectors_from_response({"data": []}, 1, "s")
