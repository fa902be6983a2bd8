"""Property-based tests (hypothesis) over sampling options and message lists.

Sampling options: building ``SamplingParams`` either raises a ``ValueError`` that names an
option whose value is outside its documented range (restated below, independently of
``sampling.py``), or it succeeds exactly when every option is in range, and then a short
generation (``max_tokens <= 3``) succeeds, respects ``max_tokens``, ``n``, ``stop`` and
``logprobs``, and leaves the engine idle.

Message lists: random roles, contents and content parts (text, images, unknown parts,
non-text values, tool calls and tool results, some malformed). Each list either raises
``InvalidRequestError`` at the call, before anything is queued, or renders and generates;
nothing else. After every example the engine still serves a request.

Few examples (generation is real), no deadline (the machine is shared), no example
database written to the working tree.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from furiosa_integrations.engine import AsyncEngine, InvalidRequestError, SamplingParams
from tests.engine_checks import wait_idle_sync

PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
QUESTION = [{"role": "user", "content": "Name a color."}]


# ---- sampling options ----


def _mostly(valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]) -> Any:
    """Valid values nine times in ten, so about half the examples pass every check."""
    return st.integers(0, 9).flatmap(lambda k: invalid if k == 9 else valid)


not_finite = st.sampled_from([float("nan"), float("inf"), -float("inf")])
OPTION_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "n": _mostly(st.integers(1, 2), st.integers(-1, 0)),
    "max_tokens": _mostly(st.integers(1, 3), st.integers(-1, 0)),
    "min_tokens": _mostly(st.integers(0, 1), st.sampled_from([-1, 4])),  # 4 > max_tokens
    "temperature": _mostly(
        st.one_of(st.floats(0.0, 2.0), st.integers(0, 2)),
        st.one_of(st.floats(-3.0, -1e-6), not_finite),
    ),
    "top_p": _mostly(
        st.floats(1e-3, 1.0), st.one_of(st.sampled_from([0.0, -0.5, 1.0001, 2]), not_finite)
    ),
    "top_k": _mostly(st.integers(-1, 60), st.sampled_from([-2, -7, 1.5])),
    "min_p": _mostly(st.floats(0.0, 1.0), st.one_of(st.sampled_from([-0.1, 1.1]), not_finite)),
    "repetition_penalty": _mostly(
        st.floats(0.05, 3.0), st.one_of(st.sampled_from([0, 0.0, -1.0]), not_finite)
    ),
    "presence_penalty": _mostly(st.floats(-2.0, 2.0), st.sampled_from([-2.5, 3, float("nan")])),
    "frequency_penalty": _mostly(st.floats(-2.0, 2.0), st.sampled_from([2.01, -3.0])),
    "seed": _mostly(st.one_of(st.none(), st.integers(-(2**40), 2**40)), st.just("7")),
    "stop": _mostly(
        st.one_of(st.none(), st.lists(st.text(min_size=1, max_size=3), max_size=3)),
        st.lists(st.sampled_from(["", 3]), min_size=1, max_size=2),
    ),
    "stop_token_ids": _mostly(
        st.one_of(st.none(), st.lists(st.integers(0, 49_151), max_size=3)),
        st.lists(st.integers(-3, -1), min_size=1, max_size=2),
    ),
    "logprobs": _mostly(st.one_of(st.none(), st.integers(0, 20)), st.sampled_from([-1, 21])),
    "ignore_eos": st.booleans(),
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# The documented range of each option (see the SamplingParams and field docstrings).
IN_RANGE: dict[str, Any] = {
    "n": lambda v: _integer(v) and v >= 1,
    "max_tokens": lambda v: _integer(v) and v >= 1,
    "min_tokens": lambda v: _integer(v) and v >= 0,
    "temperature": lambda v: _number(v) and v >= 0,
    "top_p": lambda v: _number(v) and 0 < v <= 1,
    "top_k": lambda v: _integer(v) and v >= -1,
    "min_p": lambda v: _number(v) and 0 <= v <= 1,
    "repetition_penalty": lambda v: _number(v) and v > 0,
    "presence_penalty": lambda v: _number(v) and -2 <= v <= 2,
    "frequency_penalty": lambda v: _number(v) and -2 <= v <= 2,
    "seed": lambda v: v is None or _integer(v),
    "stop": lambda v: v is None or all(isinstance(s, str) and s for s in v),
    "stop_token_ids": lambda v: v is None or all(_integer(t) and t >= 0 for t in v),
    "logprobs": lambda v: v is None or (_integer(v) and 0 <= v <= 20),
    "ignore_eos": lambda v: isinstance(v, bool),
}


def _out_of_range(options: dict[str, Any]) -> set[str]:
    bad = {name for name, value in options.items() if not IN_RANGE[name](value)}
    max_tokens, min_tokens = options.get("max_tokens", 16), options.get("min_tokens", 0)
    if not bad & {"max_tokens", "min_tokens"} and min_tokens > max_tokens:
        bad.add("min_tokens")  # documented: min_tokens <= max_tokens
    return bad


@PROPERTY_SETTINGS
@given(
    options=st.fixed_dictionaries(
        {"max_tokens": OPTION_VALUES["max_tokens"]},
        optional={
            name: strategy for name, strategy in OPTION_VALUES.items() if name != "max_tokens"
        },
    )
)
def test_sampling_options_are_refused_by_name_or_honoured(
    chat_engine: AsyncEngine, options: dict[str, Any]
) -> None:
    bad = _out_of_range(options)
    try:
        params = SamplingParams(**options)
    except ValueError as exc:
        assert isinstance(exc, InvalidRequestError)
        named = str(exc).split(" ", 1)[0]
        assert named in bad, f"{exc} names {named!r}; out of range: {bad}"
        event(f"refused: {named}")
        return
    event("accepted and generated")
    assert not bad, f"accepted out-of-range options {bad}: {options}"
    result = chat_engine.generate_sync(messages=QUESTION, params=params)
    assert len(result.outputs) == params.n
    for out in result.outputs:
        assert out.finish_reason in ("stop", "length"), out
        assert len(out.token_ids) <= params.max_tokens  # type: ignore[operator]
        if out.finish_reason == "length":
            assert len(out.token_ids) == params.max_tokens
        for stop in params.stop or []:
            assert stop not in out.text, (stop, out.text)
        if params.logprobs is None:
            assert out.logprobs is None
        else:
            assert out.logprobs is not None and len(out.logprobs) == len(out.token_ids)
            assert all(len(lp.top_logprobs) == params.logprobs for lp in out.logprobs)
    assert result.usage.completion_tokens == sum(len(o.token_ids) for o in result.outputs)
    wait_idle_sync(chat_engine)


# ---- message lists ----

text_values = _mostly(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12), st.just("")
)
parts = _mostly(
    st.one_of(text_values, st.builds(lambda t: {"type": "text", "text": t}, text_values)),
    st.sampled_from(
        [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "audio", "data": "AAAA"},
            7,
        ]
    ),
)
contents = _mostly(
    st.one_of(text_values, st.none(), st.lists(parts, max_size=3)),
    st.sampled_from([5, {"x": 1}, b"bytes"]),
)
tool_calls = st.lists(
    _mostly(
        st.builds(
            lambda name, arguments: {
                "id": "call_1",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            },
            st.just("lookup"),
            st.sampled_from([{"q": "x"}, '{"q": "x"}', {}]),
        ),
        st.sampled_from(
            [
                "not a call",
                {"type": "function", "function": {"name": "", "arguments": {}}},
                {"type": "function", "function": {"name": "f", "arguments": "{not json"}},
                {"type": "function", "function": {"name": "f", "arguments": [1]}},
            ]
        ),
    ),
    min_size=1,
    max_size=2,
)
roles = _mostly(
    st.sampled_from(["system", "developer", "user", "user", "assistant", "tool"]),
    st.sampled_from(["wizard", 3, None]),
)


@st.composite
def messages_strategy(draw: st.DrawFn) -> Any:
    def one_message() -> Any:
        if draw(st.integers(0, 19)) == 0:
            return draw(st.sampled_from(["hello", 5, None]))  # not a dict at all
        message: dict[str, Any] = {"role": draw(roles), "content": draw(contents)}
        if message["role"] == "assistant" and draw(st.integers(0, 3)) == 0:
            message["tool_calls"] = draw(tool_calls)
        if message["role"] == "tool" and draw(st.booleans()):
            message["tool_call_id"] = "call_1"
        if draw(st.integers(0, 5)) == 0:
            message["name"] = draw(text_values)
        return message

    count = draw(_mostly(st.integers(1, 4), st.just(0)))
    return [one_message() for _ in range(count)]


def _surely_invalid(messages: list[Any]) -> str | None:
    """A reason the documented rules refuse ``messages`` (None: may be fine)."""
    if not messages:
        return "empty list"
    for message in messages:
        if not isinstance(message, dict):
            return "not a dict"
        if message["role"] not in ("system", "developer", "user", "assistant", "tool"):
            return "unknown role"
        content = message["content"]
        if content is not None and not isinstance(content, (str, list)):
            return "content not text"
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    return "image on a text-only model"
    if all(m["content"] in (None, "") and not m.get("tool_calls") for m in messages):
        return "every message is empty"
    return None


@PROPERTY_SETTINGS
@given(messages=messages_strategy())
def test_message_lists_are_refused_before_queuing_or_generate(
    chat_engine: AsyncEngine, messages: list[Any]
) -> None:
    wait_idle_sync(chat_engine)  # so the stats below see only this example
    params = SamplingParams(max_tokens=2, temperature=0.0)
    reason = _surely_invalid(messages)
    try:
        stream = chat_engine.stream_sync(messages=messages, params=params)
    except InvalidRequestError as exc:
        event(f"refused: {str(exc).split(':')[0][:40]}")
        stats = chat_engine.stats()
        assert stats.request_ids == stats.waiting == stats.running == 0
    else:
        assert reason is None, f"accepted ({reason}): {messages!r}"
        event("accepted and generated")
        chunks = list(stream)
        assert chunks and chunks[-1].finish_reason in ("stop", "length", "tool_calls")
        assert sum(len(c.token_ids) for c in chunks) <= 2
    # Whatever the example did, the engine still serves, and ends idle.
    served = chat_engine.generate_sync([1, 2, 3], params=SamplingParams(max_tokens=1))
    assert len(served.outputs[0].token_ids) == 1
    wait_idle_sync(chat_engine)


@pytest.mark.parametrize("role", ["user", "system"])
def test_an_image_anywhere_is_refused(chat_engine: AsyncEngine, role: str) -> None:
    # A fixed example of the rule the property above relies on.
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [{"role": role, "content": ["look:", image]}, {"role": "user", "content": "hi"}]
    with pytest.raises(InvalidRequestError, match="text-only"):
        chat_engine.stream_sync(messages=messages)
