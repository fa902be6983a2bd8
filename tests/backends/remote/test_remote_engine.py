"""The shared engine over furiosa-llm's real server: the same answers as in-process.

The server is furiosa-llm 2026.4's own code over ``StandInNativeEngine`` (our torch
engine behind furiosa-llm's native protocol), so what the server's native engine
received is read back from it (``/_stand_in/state``) and compared with what was asked.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from furiosa_integrations.engine import (
    AsyncEngine,
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    PoolingParams,
    SamplingParams,
    StructuredOutputsParams,
    get_engine,
)
from furiosa_integrations.errors import ServerError, ServerRequestError, TokenizerMismatchError
from tests.engine_checks import wait_idle

from .servers import FuriosaServer

pytestmark = pytest.mark.models

GREEDY = SamplingParams(max_tokens=12, temperature=0.0)
CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Name a color."},
    ],
]


async def both(remote: AsyncEngine, local: AsyncEngine, **request: Any) -> tuple[object, object]:
    return await asyncio.gather(remote.generate(**request), local.generate(**request))


# ---- the same answers ----


async def test_chat_prompt_and_token_ids_match_in_process(
    remote_chat: AsyncEngine, chat_engine: AsyncEngine, served: FuriosaServer
) -> None:
    requests: list[dict[str, object]] = [{"messages": m, "params": GREEDY} for m in CHATS]
    requests.append({"prompt": "The quick brown fox", "params": GREEDY})
    requests.append({"prompt": chat_engine.tokenize("Once upon a time"), "params": GREEDY})
    for request in requests:
        ours, local = await both(remote_chat, chat_engine, **request)
        assert ours.text == local.text  # type: ignore[attr-defined]
        assert ours.outputs[0].token_ids == local.outputs[0].token_ids  # type: ignore[attr-defined]
        assert ours.outputs[0].finish_reason == local.outputs[0].finish_reason  # type: ignore[attr-defined]
        assert ours.usage.prompt_tokens == local.usage.prompt_tokens  # type: ignore[attr-defined]
        assert ours.usage.completion_tokens == local.usage.completion_tokens  # type: ignore[attr-defined]
    assert len(served.state()["received"]) == len(requests)
    await wait_idle(remote_chat)


async def test_stream_concatenates_to_the_same_text(
    remote_chat: AsyncEngine, chat_engine: AsyncEngine, served: FuriosaServer
) -> None:
    chunks = [c async for c in remote_chat.stream(messages=CHATS[0], params=GREEDY)]
    local = await chat_engine.generate(messages=CHATS[0], params=GREEDY)
    assert "".join(c.text for c in chunks) == local.text
    assert chunks[-1].finish_reason == local.outputs[0].finish_reason
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(
        local.outputs[0].token_ids
    )


async def test_logprobs_match(
    remote_chat: AsyncEngine, chat_engine: AsyncEngine, served: FuriosaServer
) -> None:
    params = SamplingParams(max_tokens=5, temperature=0.0, logprobs=2)
    ours, local = await both(remote_chat, chat_engine, messages=CHATS[0], params=params)
    got, want = ours.outputs[0].logprobs, local.outputs[0].logprobs  # type: ignore[attr-defined]
    assert [lp.token_id for lp in got] == [lp.token_id for lp in want]
    for a, b in zip(got, want, strict=True):
        assert a.token == b.token
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
        assert [t for t, _, _ in a.top_logprobs] == [t for t, _, _ in b.top_logprobs]


async def test_stop_strings_stay_in_our_engine(
    remote_chat: AsyncEngine, chat_engine: AsyncEngine, served: FuriosaServer
) -> None:
    full = await chat_engine.generate(messages=CHATS[0], params=GREEDY)
    word = full.text.split()[2]
    params = SamplingParams(max_tokens=12, temperature=0.0, stop=[word])
    ours, local = await both(remote_chat, chat_engine, messages=CHATS[0], params=params)
    assert ours.text == local.text == full.text.split(word)[0]  # type: ignore[attr-defined]
    assert ours.outputs[0].finish_reason == "stop"  # type: ignore[attr-defined]
    assert ours.outputs[0].stop_reason == word  # type: ignore[attr-defined]
    assert served.state()["params"][0]["stop"] is None  # never sent


# ---- what is sent ----


async def test_every_sampling_option_is_sent_explicitly(
    remote_chat: AsyncEngine, served: FuriosaServer
) -> None:
    params = SamplingParams(
        max_tokens=5, min_tokens=3, temperature=0.7, top_p=0.9, top_k=20, min_p=0.05,
        repetition_penalty=1.1, stop_token_ids=[7], skip_special_tokens=False,
    )  # fmt: skip
    await remote_chat.generate("Hello", params=params)
    await remote_chat.generate("Hello", params=SamplingParams(max_tokens=3, ignore_eos=True))
    # Defaults are ours, not the server's (its generation config, and 16 tokens); the
    # whole context is a lot of tokens, so the stream is closed after the first.
    async for _ in remote_chat.stream("Hello", params=SamplingParams(max_tokens=None, top_k=0)):
        break
    await wait_idle(remote_chat)
    first, second, third = served.state()["params"]
    expected = {
        "max_tokens": 5, "min_tokens": 3, "temperature": 0.7, "top_p": 0.9, "top_k": 20,
        "min_p": 0.05, "repetition_penalty": 1.1, "ignore_eos": False,
        "skip_special_tokens": False, "stop": None,
    }  # fmt: skip
    assert {k: first[k] for k in expected} == expected
    eos = sorted(remote_chat.native.eos_token_ids)  # type: ignore[attr-defined]
    assert first["stop_token_ids"] == sorted({7, *eos})  # explicit ids replace the EOS default
    assert second["ignore_eos"] is True and second["stop_token_ids"] == []
    assert (second["temperature"], second["top_k"], second["max_tokens"]) == (1.0, -1, 3)
    assert third["max_tokens"] == remote_chat.max_model_len - len(remote_chat.tokenize("Hello"))


async def test_extra_args_reach_the_server(remote_chat: AsyncEngine, served: FuriosaServer) -> None:
    params = SamplingParams(max_tokens=2, temperature=0.0, extra_args={"priority": 3})
    await remote_chat.generate("Hello", params=params)
    assert served.state()["params"][0]["extra_args"] == {"priority": 3}


@pytest.mark.parametrize(
    "options",
    [
        {"presence_penalty": 0.5},
        {"frequency_penalty": 0.5},
        {"seed": 7, "temperature": 0.8},
        {"extra_args": {"logit_bias": {"5": 10}}},
        {"extra_args": {"prompt": [1, 2]}},
    ],
)
async def test_what_furiosa_llm_would_drop_is_refused_before_sending(
    remote_chat: AsyncEngine, served: FuriosaServer, options: dict[str, object]
) -> None:
    with pytest.raises(InvalidRequestError):
        remote_chat.stream("Hello", params=SamplingParams(max_tokens=2, **options))  # type: ignore[arg-type]
    assert served.state()["received"] == []
    # A seed changes nothing under greedy decoding: allowed there.
    await remote_chat.generate("Hi", params=SamplingParams(max_tokens=1, temperature=0, seed=3))


async def test_context_length_is_checked_before_sending(
    remote_chat: AsyncEngine, served: FuriosaServer
) -> None:
    assert remote_chat.max_model_len == 8192  # /v1/models
    with pytest.raises(ContextLengthExceededError):
        remote_chat.stream("Hello", params=SamplingParams(max_tokens=9000))
    assert served.state()["received"] == []


# ---- constraints, samples, cache ----

_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
_TAG = {
    "type": "structural_tag",
    "format": {"type": "const_string", "value": "hello there"},
}


@pytest.mark.parametrize(
    "structured",
    [
        StructuredOutputsParams(json=_SCHEMA),
        StructuredOutputsParams(regex="[0-9]{3}-[0-9]{4}"),
        StructuredOutputsParams(choice=["yes", "no"]),
        StructuredOutputsParams(grammar='root ::= "red" | "green"'),
        StructuredOutputsParams(json_object=True),
        StructuredOutputsParams(structural_tag=_TAG),
    ],
    ids=["json", "regex", "choice", "grammar", "json_object", "structural_tag"],
)
async def test_structured_outputs_match_in_process(
    remote_chat: AsyncEngine,
    chat_engine: AsyncEngine,
    served: FuriosaServer,
    structured: StructuredOutputsParams,
) -> None:
    params = SamplingParams(max_tokens=24, temperature=0.0, structured_outputs=structured)
    messages = [{"role": "user", "content": "Ada is 36. Answer."}]
    ours, local = await both(remote_chat, chat_engine, messages=messages, params=params)
    assert ours.text == local.text  # type: ignore[attr-defined]
    if structured.json is not None:
        assert set(json.loads(ours.text)) == {"name", "age"}  # type: ignore[attr-defined]
    sent = served.state()["params"][0]["structured_outputs"]
    kinds = {"json", "regex", "choice", "grammar", "json_object", "structural_tag"}
    assert set(sent) & kinds == {structured.kind()}
    if structured.structural_tag is not None:
        assert json.loads(sent["structural_tag"]) == _TAG  # sent as a JSON string


async def test_n_samples_are_native_requests_of_their_own(
    remote_chat: AsyncEngine, served: FuriosaServer
) -> None:
    result = await remote_chat.generate(
        messages=CHATS[0], params=SamplingParams(n=2, max_tokens=6, temperature=0.0)
    )
    assert result.outputs[0].text == result.outputs[1].text != ""
    assert len(served.state()["received"]) == 2


async def test_cached_tokens_come_back_in_usage(
    remote_chat: AsyncEngine, served: FuriosaServer
) -> None:
    prompt = "Summarize: " + "The Rhine flows into the North Sea. " * 30
    params = SamplingParams(max_tokens=8, temperature=0.0, ignore_eos=True)
    # The torch engine shares the prompt between requests running at the same time.
    results = await asyncio.gather(*(remote_chat.generate(prompt, params=params) for _ in range(3)))
    assert max(r.usage.cached_tokens for r in results) > 0


async def test_embeddings_match_in_process(
    remote_embed: AsyncEngine, embed_engine: AsyncEngine
) -> None:
    texts = ["The ferry leaves at noon.", "Cats sleep a lot.", "NPUs run neural networks."]
    ours = await remote_embed.embed(texts)
    local = await embed_engine.embed(texts)
    assert len(ours) == 3 and len(ours[0]) == 384
    for a, b in zip(ours, local, strict=True):
        assert a == pytest.approx(b, abs=3e-3)
    short = await remote_embed.embed(texts[:1], PoolingParams(dimensions=64))
    assert len(short[0]) == 64


# ---- connecting ----


def test_the_tokenizer_and_names_come_from_the_server(
    remote_chat: AsyncEngine, chat_engine: AsyncEngine, furiosa_server: FuriosaServer
) -> None:
    assert remote_chat.model_name == "stand-in"  # the one model /v1/models lists
    assert remote_chat.backend == "remote"
    # furiosa-llm's /tokenizer_info names the model directory, which exists here.
    assert remote_chat.tokenizer.name_or_path == chat_engine.tokenizer.name_or_path
    by_name = get_engine(base_url=furiosa_server.base_url, model="stand-in")
    assert by_name.model_name == "stand-in"
    with pytest.raises(InvalidRequestError, match="stand-in"):
        get_engine(base_url=furiosa_server.base_url, served_model_name="nope")


def test_a_tokenizer_that_disagrees_with_the_server_is_refused(
    furiosa_server: FuriosaServer, embed_engine: AsyncEngine
) -> None:
    with pytest.raises(TokenizerMismatchError, match="does not match"):
        get_engine(base_url=furiosa_server.base_url, model=embed_engine.tokenizer.name_or_path)


def test_no_tokenizer_here_is_a_clear_error(served: FuriosaServer) -> None:
    served.fault(kind="status", status=404, path="/tokenizer_info")
    with pytest.raises(ModelNotFoundError, match="Pass model="):
        get_engine(base_url=served.base_url, timeout=599.0)  # an engine of its own


async def test_the_router_does_not_proxy_embeddings(
    furiosa_embed_server: FuriosaServer, remote_embed: AsyncEngine
) -> None:
    furiosa_embed_server.fault(kind="status", status=404, path="/v1/embeddings")
    with pytest.raises(ServerRequestError, match="furiosa-llm route"):
        await remote_embed.embed(["hello"])
    assert len(await remote_embed.embed(["hello"])) == 1


# ---- errors the server reports ----


async def test_server_errors_mid_stream_are_typed_and_the_next_request_is_served(
    remote_chat: AsyncEngine, served: FuriosaServer
) -> None:
    # An id outside the vocabulary fails in the native engine: HTTP 200, then an error event.
    with pytest.raises(ServerError, match="internal server error"):
        await remote_chat.generate([99999999], params=GREEDY)
    bad_regex = StructuredOutputsParams(regex="[0-9")
    with pytest.raises(ServerRequestError, match="regex"):
        await remote_chat.generate("Hi", params=SamplingParams(structured_outputs=bad_regex))
    result = await remote_chat.generate(messages=CHATS[0], params=GREEDY)
    assert result.text
    await wait_idle(remote_chat)
