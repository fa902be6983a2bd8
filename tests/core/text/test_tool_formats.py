"""Each model family's own tool-call format: detected from the chat template, rendered by
it, constrained and parsed in its syntax (hermes, llama3_json, mistral, qwen3_xml).

The default model's template renders no tools, so every test here passes a chat template
written for it in the family's syntax (``format_templates``). Forced calls are constrained,
so the 135M model always writes them in the family's syntax; ``auto`` leaves the choice to
the model, which is asked to repeat a call to make one.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest

from furiosa_integrations.core.text.tool_call_parser import ToolCallParser
from furiosa_integrations.core.text.tool_calling import (
    markers_are_special,
    plan_tool_request,
    tool_call_constraint,
)
from furiosa_integrations.core.text.tool_formats import FORMATS, detect_format, format_named
from furiosa_integrations.core.text.tool_formats.mistral import Mistral, mistral_call_id
from furiosa_integrations.core.text.tool_formats.qwen3_xml import typed_value
from furiosa_integrations.core.text.tools import normalize_tool_choice, normalize_tools
from furiosa_integrations.engine import AsyncEngine, InvalidRequestError, SamplingParams, ToolCall
from tests.core.text.format_templates import (
    ADD,
    SCHEMAS,
    TEMPLATES,
    WEATHER,
    repeat_prompts,
)
from tests.engine_checks import wait_idle

GREEDY = SamplingParams(max_tokens=64, temperature=0.0)
ASK = [{"role": "user", "content": "What is the weather in Rome?"}]
# How each family's output starts a call (the raw tokens, before parsing).
CALL_START = {
    "hermes": '<tool_call>\n{"name": "',
    "llama3_json": '{"name": "',
    "mistral": '[TOOL_CALLS] [{"name": "',
    "qwen3_xml": "<tool_call>\n<function=",
}
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
]
# How each template renders the call and the result of HISTORY.
RENDERED_HISTORY = {
    "hermes": [
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": '
        '{"city": "Paris"}}\n</tool_call><|im_end|>',
        "<|im_start|>user\n<tool_response>\n18 C, sunny\n</tool_response><|im_end|>",
    ],
    "llama3_json": [
        '<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>',
        "<|start_header_id|>ipython<|end_header_id|>\n\n18 C, sunny<|eot_id|>",
    ],
    "mistral": [
        f'[TOOL_CALLS] [{{"name": "get_weather", "arguments": {{"city": "Paris"}}, '
        f'"id": "{mistral_call_id("call_1")}"}}]',
        f'[TOOL_RESULTS] {{"content": "18 C, sunny", "call_id": "{mistral_call_id("call_1")}"}}'
        "[/TOOL_RESULTS]",
    ],
    "qwen3_xml": [
        "<|im_start|>assistant\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n"
        "</parameter>\n</function>\n</tool_call><|im_end|>",
        "<|im_start|>user\n<tool_response>\n18 C, sunny\n</tool_response><|im_end|>",
    ],
}
# How each template renders the offered tools (its own words, not our tool prompt's).
RENDERED_TOOLS = {
    "hermes": ["<tools>\n" + json.dumps(WEATHER), "return a json object with function name"],
    "llama3_json": [
        "Environment: ipython",
        "Given the following functions",
        '    "type": "function"',
    ],
    "mistral": ["[AVAILABLE_TOOLS] " + json.dumps([WEATHER]) + "[/AVAILABLE_TOOLS][INST] "],
    "qwen3_xml": ["<function>\n<name>get_weather</name>\n<description>Get the current weather"],
}


def _kwargs(name: str) -> dict[str, Any]:
    return {"chat_template": TEMPLATES[name]}


def _check_calls(calls: list[ToolCall], names: set[str]) -> None:
    for call in calls:
        assert call.name in names, call
        jsonschema.validate(call.arguments, SCHEMAS[call.name])


# ---- detection and override ----


def test_format_is_detected_from_the_template(chat_engine: AsyncEngine) -> None:
    for name, template in TEMPLATES.items():
        detected = detect_format(template)
        assert detected is not None and detected.name == name
    assert detect_format(str(chat_engine.tokenizer.chat_template)) is None  # no tools: ours
    assert set(FORMATS) >= {"hermes", "llama3_json", "mistral", "qwen3_xml"}
    plan = plan_tool_request(
        chat_engine.tokenizer, ASK, [WEATHER], "required", GREEDY, _kwargs("mistral")
    )
    assert plan.format is not None and plan.format.name == "mistral"
    assert plan.params.structured_outputs is not None
    # The Mistral family's variants: a space after [TOOL_CALLS] (v0.3), per-call [ARGS] (v11).
    assert (
        format_named("mistral", TEMPLATES["mistral"])
        .render_calls([("f", {})])
        .startswith("[TOOL_CALLS] [")
    )
    v11 = Mistral.for_template("{{ '[TOOL_CALLS]' + name + '[ARGS]' }}")
    assert v11.render_calls([("f", {"x": 1})]) == '[TOOL_CALLS]f[ARGS]{"x": 1}'


def test_unknown_format_name_is_refused_before_queuing(chat_engine: AsyncEngine) -> None:
    for tools in ([WEATHER], None):
        with pytest.raises(InvalidRequestError, match="tool_call_format 'json5' is not one of"):
            chat_engine.stream(messages=ASK, tools=tools, tool_call_format="json5", params=GREEDY)
    with pytest.raises(InvalidRequestError, match="tool_call_format"):
        chat_engine.stream(messages=ASK, tools=[WEATHER], tool_call_format=3, params=GREEDY)  # type: ignore[arg-type]
    stats = chat_engine.stats()
    assert stats.request_ids == stats.waiting == stats.running == 0


# ---- the prompt ----


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_prompt_carries_the_tools_the_way_the_template_renders_them(
    chat_engine: AsyncEngine, name: str
) -> None:
    prompt = chat_engine.render_chat(ASK, tools=[WEATHER], chat_template_kwargs=_kwargs(name))
    for expected in RENDERED_TOOLS[name]:
        assert expected in prompt, (expected, prompt)
    assert FORMATS[name].how_to_call not in prompt  # the template teaches its own syntax
    assert "You must call" not in prompt
    forced = chat_engine.render_chat(
        ASK, tools=[WEATHER], tool_choice="required", chat_template_kwargs=_kwargs(name)
    )
    assert "You must call at least one function." in forced


@pytest.mark.parametrize("name", sorted(TEMPLATES))
async def test_history_with_tool_results_renders_back_through_the_template(
    chat_engine: AsyncEngine, name: str
) -> None:
    prompt = chat_engine.render_chat(HISTORY, tools=[WEATHER], chat_template_kwargs=_kwargs(name))
    for expected in RENDERED_HISTORY[name]:
        assert expected in prompt, (expected, prompt)
    # Without tools on offer the history still renders (through the same template).
    bare = chat_engine.render_chat(HISTORY, chat_template_kwargs=_kwargs(name))
    assert RENDERED_HISTORY[name][1] in bare
    result = await chat_engine.generate(
        messages=HISTORY,
        params=SamplingParams(max_tokens=4, temperature=0),
        chat_template_kwargs=_kwargs(name),
    )
    assert result.usage.prompt_tokens == len(chat_engine.tokenize(bare))


def test_explicit_format_on_a_template_without_tools_is_taught(chat_engine: AsyncEngine) -> None:
    """The default template renders no tools: our prompt teaches the named format."""
    history = [*HISTORY, {"role": "user", "content": "And in Rome?"}]
    prompt = chat_engine.render_chat(history, tools=[WEATHER], tool_call_format="llama3_json")
    assert FORMATS["llama3_json"].how_to_call in prompt
    assert '{"name": "<function-name>", "parameters": {"<argument>": "<value>"}}' in prompt
    assert '{"name": "get_weather", "parameters": {"city": "Paris"}}' in prompt  # the history
    assert '<tool_response name="get_weather">\n18 C, sunny\n</tool_response>' in prompt
    # A template with a format of its own, asked for another: that one is taught.
    taught = chat_engine.render_chat(
        ASK, tools=[WEATHER], tool_call_format="qwen3_xml", chat_template_kwargs=_kwargs("hermes")
    )
    assert FORMATS["qwen3_xml"].how_to_call in taught and "<function=<function-name>>" in taught


# ---- the constraint ----


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_constraint_admits_calls_in_the_family_syntax(chat_engine: AsyncEngine, name: str) -> None:
    factory = chat_engine.native.constraint_factory  # type: ignore[attr-defined]
    fmt = format_named(name, TEMPLATES[name])
    call = fmt.render_calls([("get_weather", {"city": "Paris"})])
    unknown = fmt.render_calls([("delete_everything", {})])
    bad = fmt.render_calls([("add", {"a": 1})])  # b is required

    def accepts(choice: str, text: str) -> bool:
        plan = plan_tool_request(
            chat_engine.tokenizer, ASK, [WEATHER, ADD], choice, GREEDY, _kwargs(name)
        )
        matcher = factory(plan.params).matcher
        return bool(matcher.accept_string(text)) and bool(matcher.is_completed())

    assert accepts("auto", "Just some text, no call at all.")
    assert accepts("auto", "Let me check. " + call)
    assert accepts("required", call) and accepts("get_weather", call)
    assert not accepts("required", "Sure! " + call)
    assert not accepts("add", call)
    assert not accepts("auto", "Let me check. " + unknown)
    assert not accepts("required", bad)


def test_mistral_per_call_constraint(chat_engine: AsyncEngine) -> None:
    factory = chat_engine.native.constraint_factory  # type: ignore[attr-defined]
    tools = normalize_tools([WEATHER, ADD])
    add = '[TOOL_CALLS]add[ARGS]{"a": 1, "b": 2}'
    weather = '[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}'
    for mode, text, ok in [
        ("required", add + weather, True),
        ("auto", "Sure. " + add, True),
        ("auto", "[TOOL_CALLS]rm[ARGS]{}", False),
        ("required", "Sure. " + add, False),
    ]:
        choice = normalize_tool_choice(mode, tools)
        params = SamplingParams(
            structured_outputs=tool_call_constraint(Mistral(per_call=True), tools, choice)
        )
        matcher = factory(params).matcher
        assert (matcher.accept_string(text) and matcher.is_completed()) == ok, (mode, text)


# ---- generation: forced and auto ----


async def test_forced_calls_are_written_in_each_family_syntax(chat_engine: AsyncEngine) -> None:
    jobs = [(name, choice) for name in sorted(TEMPLATES) for choice in ("required", "add")]
    results = await asyncio.gather(
        *(
            chat_engine.generate(
                messages=ASK,
                tools=[WEATHER, ADD],
                tool_choice=choice,
                params=GREEDY,
                chat_template_kwargs=_kwargs(name),
            )
            for name, choice in jobs
        )
    )
    for (name, choice), result in zip(jobs, results, strict=True):
        completion = result.outputs[0]
        raw = chat_engine.tokenizer.decode(completion.token_ids, skip_special_tokens=True)
        assert raw.startswith(CALL_START[name]), (name, raw)
        assert completion.tool_calls, (name, choice, raw)
        _check_calls(completion.tool_calls, {"add"} if choice == "add" else {"get_weather", "add"})
        assert completion.text == "", (name, completion.text)
        assert completion.finish_reason in ("tool_calls", "length")
        if choice == "add":
            assert [c.name for c in completion.tool_calls] == ["add"]
        if name == "mistral":  # Mistral's templates refuse other ids in the next turn
            assert all(len(c.id) == 9 and c.id.isalnum() for c in completion.tool_calls)
    await wait_idle(chat_engine)


async def test_auto_calls_parse_in_each_family_syntax(chat_engine: AsyncEngine) -> None:
    jobs = [(name, prompt) for name in sorted(TEMPLATES) for prompt in repeat_prompts(name)]
    results = await asyncio.gather(
        *(
            chat_engine.generate(
                messages=prompt,
                tools=[WEATHER],
                tool_choice="auto",
                params=SamplingParams(max_tokens=48, temperature=0),
                chat_template_kwargs=_kwargs(name),
            )
            for name, prompt in jobs
        )
    )
    called = set()
    for (name, _), result in zip(jobs, results, strict=True):
        completion = result.outputs[0]
        _check_calls(completion.tool_calls, {"get_weather"})
        if completion.tool_calls:
            called.add(name)
            assert completion.finish_reason in ("tool_calls", "length")
            trigger = format_named(name, TEMPLATES[name]).constraint_trigger
            assert trigger not in completion.text, (name, completion.text)
    assert called == set(TEMPLATES), called  # each family's call made and read at least once


async def test_explicit_format_is_constrained_and_parsed(chat_engine: AsyncEngine) -> None:
    for name in ("llama3_json", "mistral", "qwen3_xml"):
        result = await chat_engine.generate(
            messages=ASK,
            tools=[WEATHER],
            tool_choice="required",
            tool_call_format=name,
            params=GREEDY,
        )
        completion = result.outputs[0]
        raw = chat_engine.tokenizer.decode(completion.token_ids, skip_special_tokens=True)
        assert raw.startswith(CALL_START[name]), (name, raw)
        assert [c.name for c in completion.tool_calls] == ["get_weather"]
        _check_calls(completion.tool_calls, {"get_weather"})


# ---- the parsers ----


def _feed(parser: ToolCallParser, text: str, size: int) -> tuple[str, list[ToolCall]]:
    content = ""
    calls: list[ToolCall] = []
    for start in range(0, len(text), size):
        piece, _, new = parser.feed(text[start : start + size])
        content, calls = content + piece, calls + new
    piece, _, new = parser.finish()
    return content + piece, calls + new


def _parser(name: str, template: str = "") -> ToolCallParser:
    return ToolCallParser(fmt=format_named(name, template), schemas=SCHEMAS)


PARSED = {
    "llama3_json": (
        'Sure. {"name": "get_weather", "parameters": {"city": "Paris"}}; '
        '{"name": "add", "arguments": {"a": 1, "b": 2}} done, {"nam',
        'Sure. done, {"nam',
    ),
    "mistral": (
        '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
        '{"name": "add", "arguments": {"a": 1, "b": 2}}]',
        "",
    ),
    "qwen3_xml": (
        "Checking.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "</function>\n</tool_call>\n<tool_call>\n<function=add>\n<parameter=a>\n1\n</parameter>\n"
        "<parameter=b>\n2\n</parameter>\n</function>\n</tool_call>",
        "Checking.\n",
    ),
}


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 1000])
@pytest.mark.parametrize("name", sorted(PARSED))
def test_each_parser_splits_text_and_calls_at_any_chunk_boundary(name: str, size: int) -> None:
    text, content = PARSED[name]
    got, calls = _feed(_parser(name), text, size)
    assert got == content
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("add", {"a": 1, "b": 2}),  # typed by the schema where the syntax is text (XML)
    ]


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_mistral_per_call_syntax_and_ids(size: int) -> None:
    text = '[TOOL_CALLS]add[ARGS]{"a": 1, "b": 2}[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}'
    parser = ToolCallParser(fmt=Mistral(per_call=True), schemas=SCHEMAS)
    content, calls = _feed(parser, text, size)
    assert content == ""
    assert [(c.name, c.arguments) for c in calls] == [
        ("add", {"a": 1, "b": 2}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert all(len(c.id) == 9 and c.id.isalnum() for c in calls)
    assert mistral_call_id("call_1") == mistral_call_id("call_1") != mistral_call_id("call_2")


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_malformed_unknown_and_repeated_calls_in_every_format(name: str) -> None:
    fmt = format_named(name, TEMPLATES[name])
    unknown = fmt.render_calls([("rm", {"path": "/"})])
    content, calls = _feed(_parser(name, TEMPLATES[name]), "Hi. " + unknown, 3)
    assert calls == [] and unknown in content  # a call of no offered tool stays text
    call = fmt.render_calls([("add", {"a": 1, "b": 2})])
    parser = _parser(name, TEMPLATES[name])
    _, _, first = parser.feed(call + "\n")
    _, _, again = parser.feed(call + "\n")
    assert len(first) == 1 and again == [] and parser.done  # repeated word for word: over
    # An echoed <tool_response> wrapper leaves the answer in every format.
    echo = _feed(_parser(name), "<tool_response>\n18 C, sunny\n</tool_response>", 4)
    assert echo == ("18 C, sunny\n", [])


def test_xml_values_are_typed_by_the_schema() -> None:
    assert typed_value("\n42\n", {"type": "integer"}) == 42
    assert typed_value("2.5", {"type": "number"}) == 2.5
    assert typed_value("True", {"type": "boolean"}) is True
    assert typed_value('{"k": [1]}', {"type": "object"}) == {"k": [1]}
    assert typed_value("[1, 'a']", {"type": "array"}) == [1, "a"]  # Python literal
    assert typed_value("\n 007 \n", {"type": "string"}) == " 007 "
    assert typed_value("null", {"type": ["string", "null"]}) == "null"  # string wins
    assert typed_value("nope", {"type": "integer"}) == "nope"  # mistyped: kept as text
    assert typed_value("3", None) == 3


class _MistralLikeTokenizer:
    """Encodes ``[TOOL_CALLS]`` as one special token that decoding may skip."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [0] if text == "[TOOL_CALLS]" else [ord(c) for c in text]

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(
            "" if i == 0 and skip_special_tokens else "[TOOL_CALLS]" if i == 0 else chr(i)
            for i in ids
        )


def test_special_token_markers_keep_special_tokens_in_the_output(chat_engine: AsyncEngine) -> None:
    assert markers_are_special(_MistralLikeTokenizer(), Mistral())  # type: ignore[arg-type]
    assert not markers_are_special(chat_engine.tokenizer, Mistral())  # SmolLM2: plain text
    plan = plan_tool_request(
        chat_engine.tokenizer, ASK, [WEATHER], "required", GREEDY, _kwargs("mistral")
    )
    assert plan.params.skip_special_tokens  # nothing to keep for this tokenizer
