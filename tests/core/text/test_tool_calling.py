"""Tool calling on the real default model (SmolLM2-135M, whose template knows no tools).

Forced calls (required, named) are constrained, so even this model always produces calls
that name an offered tool and whose arguments validate; auto leaves the choice to the
model but constrains any call it starts; none renders no tools and parses no calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

import jsonschema
import pytest

from furiosa_integrations.core.text.tool_call_parser import ToolCallParser
from furiosa_integrations.core.text.tool_calling import plan_tool_request
from furiosa_integrations.core.text.tools import normalize_tool_choice, normalize_tools
from furiosa_integrations.engine import (
    AsyncEngine,
    InvalidRequestError,
    SamplingParams,
    StructuredOutputsParams,
    ToolCall,
)
from tests.engine_checks import wait_idle


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


WEATHER = _tool(
    "get_weather",
    "Get the current weather in a city",
    {
        "city": {"type": "string", "maxLength": 20},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    ["city"],
)
ADD = _tool(
    "add",
    "Add two integers",
    {
        "a": {"type": "integer", "minimum": -1000, "maximum": 1000},
        "b": {"type": "integer", "minimum": -1000, "maximum": 1000},
    },
    ["a", "b"],
)
SEARCH = _tool(
    "search_books",
    "Search a library catalogue",
    {
        "query": {"type": "string", "maxLength": 30},
        "max_results": {"type": "integer", "minimum": 1, "maximum": 10},
        "available_only": {"type": "boolean"},
    },
    ["query"],
)
TOOLS = [WEATHER, ADD, SEARCH]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}

QUESTIONS = [
    "What is the weather in Paris?",
    "What is 12 plus 30?",
    "Find me books about whales.",
    "Is it raining in Tokyo right now, in fahrenheit?",
    "Hello! How are you?",
]


def _ask(question: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": question}]


GREEDY = SamplingParams(max_tokens=80, temperature=0.0)


def _check_calls(calls: list[ToolCall], offered: list[dict]) -> None:
    names = {t["function"]["name"] for t in offered}
    for call in calls:
        assert call.name in names, call
        assert call.id.startswith("call_") and len(call.id) > 10
        jsonschema.validate(call.arguments, SCHEMAS[call.name])


async def _run_all(
    engine: AsyncEngine,
    jobs: list[tuple[str, list[dict], Any]],
    params: SamplingParams = GREEDY,
) -> list:
    return await asyncio.gather(
        *(
            engine.generate(messages=_ask(q), tools=tools, tool_choice=choice, params=params)
            for q, tools, choice in jobs
        )
    )


SHORT = SamplingParams(max_tokens=32, temperature=0.0)  # free text: enough to see a call start


async def test_forced_calls_name_an_offered_tool_with_valid_arguments(
    chat_engine: AsyncEngine,
) -> None:
    named_alone = [(q, [ADD], "add") for q in QUESTIONS]
    named_among_others = [
        (q, TOOLS, {"type": "function", "function": {"name": "get_weather"}}) for q in QUESTIONS
    ]
    required_alone = [(q, [SEARCH], "required") for q in QUESTIONS]
    required_among_others = [(q, TOOLS, "required") for q in QUESTIONS]
    jobs: list[tuple[str, list[dict], Any]] = (
        named_alone + named_among_others + required_alone + required_among_others
    )
    results = await _run_all(chat_engine, jobs)
    for (question, tools, choice), result in zip(jobs, results, strict=True):
        completion = result.outputs[0]
        assert completion.tool_calls, (question, choice, completion.text)
        _check_calls(completion.tool_calls, tools)
        ids = [c.id for c in completion.tool_calls]
        assert len(set(ids)) == len(ids)
        if choice == "required":
            # One or more calls (OpenAI's semantics). When the budget runs out the call
            # being written is completed in time: no cut-off call is left over as text.
            assert completion.finish_reason in ("tool_calls", "length")
            assert completion.text == "", completion.text
        else:
            wanted = choice if isinstance(choice, str) else choice["function"]["name"]
            assert [c.name for c in completion.tool_calls] == [wanted]  # exactly one call
            assert (completion.finish_reason, completion.text) == ("tool_calls", "")
    await wait_idle(chat_engine)


async def test_required_without_parallel_calls_makes_exactly_one(chat_engine: AsyncEngine) -> None:
    params = SamplingParams(max_tokens=80, temperature=0.0)
    results = await asyncio.gather(
        *(
            chat_engine.generate(
                messages=_ask(q),
                tools=TOOLS,
                tool_choice="required",
                parallel_tool_calls=False,
                params=params,
            )
            for q in QUESTIONS[:3]
        )
    )
    for result in results:
        completion = result.outputs[0]
        assert len(completion.tool_calls) == 1
        _check_calls(completion.tool_calls, TOOLS)
        assert (completion.finish_reason, completion.text) == ("tool_calls", "")


async def test_tool_choice_none_gives_no_call(chat_engine: AsyncEngine) -> None:
    jobs = [(q, TOOLS, "none") for q in QUESTIONS]
    results = await _run_all(chat_engine, jobs, SHORT)
    for result in results:
        completion = result.outputs[0]
        assert completion.tool_calls == []
        assert completion.text.strip()
        assert completion.finish_reason in ("stop", "length")
    # Nothing about the tools reaches the prompt.
    plan = plan_tool_request(chat_engine.tokenizer, _ask("hi"), TOOLS, "none", GREEDY, None)
    assert "get_weather" not in plan.prompt and "<tool_call>" not in plan.prompt
    assert plan.params.structured_outputs is None
    # Even a call written out as text is not parsed as a call.
    copied = await chat_engine.generate(
        messages=_ask("Say this."),
        tools=TOOLS,
        tool_choice="none",
        params=SamplingParams(
            max_tokens=40,
            temperature=0.0,
            structured_outputs=StructuredOutputsParams(
                choice=['<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>']
            ),
        ),
    )
    assert copied.outputs[0].tool_calls == [] and "<tool_call>" in copied.text


async def test_auto_calls_are_valid_when_made(chat_engine: AsyncEngine) -> None:
    jobs = [(q, TOOLS, "auto") for q in QUESTIONS] + [(q, TOOLS, None) for q in QUESTIONS[:2]]
    results = await _run_all(chat_engine, jobs, SHORT)
    for result in results:
        completion = result.outputs[0]
        _check_calls(completion.tool_calls, TOOLS)
        if completion.finish_reason != "length":  # else a cut-off call may remain as text
            assert "<tool_call>" not in completion.text
        if completion.tool_calls:
            assert completion.finish_reason in ("tool_calls", "length")


def test_auto_constraint_lets_text_through_and_constrains_calls(chat_engine: AsyncEngine) -> None:
    plan = plan_tool_request(chat_engine.tokenizer, _ask("Weather?"), TOOLS, "auto", GREEDY, None)
    factory = chat_engine.native.constraint_factory  # type: ignore[attr-defined]

    def accepts(text: str) -> bool:
        return bool(factory(plan.params).matcher.accept_string(text))

    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    assert accepts("Just some text, no call at all.")
    assert accepts(f"Let me check. {call} Done.")
    assert accepts(call + "\n" + call.replace("Paris", "Rome"))  # several calls in one turn
    assert not accepts('<tool_call>{"name": "delete_everything", "arguments": {}}')
    assert not accepts('<tool_call>{"name": "add", "arguments": {"a": "one"')
    assert not accepts('<tool_call>{"name": "get_weather", "arguments": {"unit": "kelvin"')


def test_forced_constraints_admit_only_calls(chat_engine: AsyncEngine) -> None:
    factory = chat_engine.native.constraint_factory  # type: ignore[attr-defined]
    call = '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>'
    required = plan_tool_request(
        chat_engine.tokenizer, _ask("Sum"), TOOLS, "required", GREEDY, None
    )
    matcher = factory(required.params).matcher
    assert matcher.accept_string(call + "\n" + call) and matcher.is_completed()
    assert not factory(required.params).matcher.accept_string("Sure! " + call)
    named = plan_tool_request(
        chat_engine.tokenizer, _ask("Sum"), TOOLS, "get_weather", GREEDY, None
    )
    assert not factory(named.params).matcher.accept_string(call)


async def test_streaming_yields_text_then_whole_calls(chat_engine: AsyncEngine) -> None:
    chunks = [
        chunk
        async for chunk in chat_engine.stream(
            messages=_ask("Weather in Oslo and in Rome?"),
            tools=TOOLS,
            tool_choice="required",
            params=GREEDY,
        )
    ]
    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert calls
    _check_calls(calls, TOOLS)
    # No chunk leaks call markup as text, and each call arrives whole in one chunk.
    assert all(
        "<tool_call>" not in chunk.text and "tool_call" not in chunk.text for chunk in chunks
    )
    assert len(chunks) > len(calls)  # tokens streamed while the call was being written
    assert chunks[-1].finish_reason == "tool_calls"


async def test_history_with_calls_and_results_renders_and_continues(
    chat_engine: AsyncEngine,
) -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "What is the weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Rome"}},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "25 C, cloudy"},
    ]
    plan = plan_tool_request(chat_engine.tokenizer, history, TOOLS, "auto", GREEDY, None)
    prompt = plan.prompt
    assert (
        '<|im_start|>assistant\n<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}'
        '</tool_call>\n<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}'
        "</tool_call><|im_end|>" in prompt
    )
    assert (
        '<|im_start|>user\n<tool_response name="get_weather">\n18 C, sunny\n</tool_response>\n'
        '<tool_response name="get_weather">\n25 C, cloudy\n</tool_response><|im_end|>' in prompt
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    # The same history with no tools on offer still renders the calls (and generates).
    result = await chat_engine.generate(
        messages=history, params=SamplingParams(max_tokens=12, temperature=0.0)
    )
    assert result.outputs[0].finish_reason in ("stop", "length")
    assert result.outputs[0].tool_calls == []


TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools:\n{% for t in tools %}{{ t | tojson }}\n{% endfor %}"
    "<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content or '' }}"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>\n"
    '{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}'
    "\n</tool_call>{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


async def test_template_with_tool_support_renders_tools_itself(chat_engine: AsyncEngine) -> None:
    kwargs = {"chat_template": TOOLS_TEMPLATE}
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Add 2 and 3."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "5"},
        {"role": "user", "content": "Now add 5 and 7."},
    ]
    plan = plan_tool_request(chat_engine.tokenizer, history, [ADD], "add", GREEDY, kwargs)
    assert plan.prompt.startswith('<|im_start|>system\nTools:\n{"type": "function"')
    # The template's own call format (JSON on its own line), arguments as a dict.
    assert (
        '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>' in plan.prompt
    )
    assert "<|im_start|>tool\n5<|im_end|>" in plan.prompt
    result = await chat_engine.generate(
        messages=history, tools=[ADD], tool_choice="add", params=GREEDY, chat_template_kwargs=kwargs
    )
    calls = result.outputs[0].tool_calls
    assert [c.name for c in calls] == ["add"]
    _check_calls(calls, [ADD])


@pytest.mark.parametrize(
    ("tools", "tool_choice", "message"),
    [
        (
            [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}],
            None,
            "object",
        ),
        ([{"type": "function", "function": {"name": "f", "parameters": "nope"}}], None, "object"),
        ([{"type": "function", "function": {"description": "no name"}}], None, "name"),
        ([{"type": "retrieval"}], None, "type"),
        ([ADD, ADD], None, "twice"),
        ([_tool("f", "", {"x": {"type": "strin"}}, [])], None, "JSON schema"),
        ("not a list", None, "must be a dict"),
        (TOOLS, "sometimes", "not among the offered tools"),
        (TOOLS, "delete_everything", "not among the offered tools"),
        (TOOLS, {"type": "function", "function": {"name": "nope"}}, "not among the offered tools"),
        (TOOLS, {"type": "function"}, "name a function"),
        (TOOLS, 42, "tool_choice must be"),
        ([], "required", "at least one tool"),
        (None, "add", "not among the offered tools"),
    ],
)
async def test_invalid_tools_and_tool_choice_raise_before_queuing(
    chat_engine: AsyncEngine, tools: Any, tool_choice: Any, message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        chat_engine.stream(messages=_ask("hi"), tools=tools, tool_choice=tool_choice, params=GREEDY)
    stats = chat_engine.stats()
    assert stats.request_ids == stats.waiting == stats.running == 0


def test_tools_and_structured_outputs_together_are_refused(chat_engine: AsyncEngine) -> None:
    params = SamplingParams(structured_outputs=StructuredOutputsParams(json_object=True))
    with pytest.raises(InvalidRequestError, match="structured_outputs"):
        chat_engine.stream(messages=_ask("hi"), tools=TOOLS, tool_choice="required", params=params)
    # With tool_choice none the tools add no constraint, so the schema applies alone.
    chat_engine.stream(messages=_ask("hi"), tools=TOOLS, tool_choice="none", params=params)


def test_parallel_tool_calls_is_an_engine_argument(chat_engine: AsyncEngine) -> None:
    with pytest.raises(InvalidRequestError, match="parallel_tool_calls must be a bool"):
        chat_engine.stream(
            messages=_ask("hi"),
            tools=TOOLS,
            parallel_tool_calls="no",  # type: ignore[arg-type]
            params=GREEDY,
        )
    stats = chat_engine.stats()
    assert stats.request_ids == stats.waiting == stats.running == 0

    def tag_format(plan: Any) -> dict[str, Any]:
        return plan.params.structured_outputs.structural_tag["format"]

    ask = _ask("Weather?")
    single = plan_tool_request(
        chat_engine.tokenizer, ask, TOOLS, "auto", GREEDY, None, parallel_tool_calls=False
    )
    assert tag_format(single)["stop_after_first"] is True
    several = plan_tool_request(chat_engine.tokenizer, ask, TOOLS, "auto", GREEDY, None)
    assert "stop_after_first" not in tag_format(several)
    # extra_args is no side channel for it: the engine reads nothing from there.
    legacy = GREEDY.clone(extra_args={"parallel_tool_calls": False})
    assert "stop_after_first" not in tag_format(
        plan_tool_request(chat_engine.tokenizer, ask, TOOLS, "auto", legacy, None)
    )


def test_tool_choice_vocabulary() -> None:
    tools = normalize_tools(TOOLS)
    assert normalize_tool_choice(None, tools).mode == "auto"
    assert normalize_tool_choice(None, []).mode == "none"
    assert normalize_tool_choice("any", tools).mode == "required"  # LangChain's word
    assert normalize_tool_choice({"type": "required"}, tools).mode == "required"
    named = normalize_tool_choice({"type": "function", "function": {"name": "add"}}, tools)
    assert (named.mode, named.name) == ("named", "add")
    assert normalize_tool_choice("add", tools).name == "add"
    # A tool may be called "auto"; naming it picks the keyword, as in OpenAI's API.
    assert normalize_tools([{"name": "flat", "parameters": {"type": "object"}}])[0].name == "flat"
    assert (
        normalize_tools([{"type": "function", "function": {"name": "noparams"}}])[0].parameters[
            "type"
        ]
        == "object"
    )


def _feed_in_pieces(parser: ToolCallParser, text: str, size: int) -> tuple[str, list[ToolCall]]:
    content, calls = "", []
    for start in range(0, len(text), size):
        piece, _, new = parser.feed(text[start : start + size])
        content += piece
        calls += new
    piece, _, new = parser.finish()
    return content + piece, calls + new


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 1000])
def test_parser_splits_text_and_calls_at_any_chunk_boundary(size: int) -> None:
    text = (
        "Let me look. "
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
        '<tool_call>\n{"name": "add", "arguments": "{\\"a\\": 1, \\"b\\": 2}"}\n</tool_call>'
        " Both done, see <tool_ and < signs."
    )
    content, calls = _feed_in_pieces(ToolCallParser({"get_weather", "add"}), text, size)
    assert content == "Let me look. Both done, see <tool_ and < signs."
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("add", {"a": 1, "b": 2}),
    ]


def test_parser_holds_back_only_a_possible_tag() -> None:
    parser = ToolCallParser({"f"})
    assert parser.feed("Hello <tool")[0] == "Hello "
    assert parser.feed("box> here")[0] == "<toolbox> here"
    content, _, calls = parser.feed('<tool_call>{"name": "f", "arguments": {}}')
    assert (content, calls) == ("", [])  # held until the closing tag
    content, _, calls = parser.feed("</tool_call>")
    assert [c.name for c in calls] == ["f"]


def test_parser_keeps_malformed_or_unknown_calls_as_text() -> None:
    bad = "<tool_call>{not json}</tool_call>"
    unknown = '<tool_call>{"name": "rm", "arguments": {}}</tool_call>'
    content, calls = _feed_in_pieces(ToolCallParser({"f"}), bad + unknown, 4)
    assert calls == [] and content == bad + unknown
    # Cut off inside a call: a complete JSON object still counts, a partial one is text.
    cut = _feed_in_pieces(ToolCallParser({"f"}), '<tool_call>{"name": "f", "arguments": {}}', 3)
    assert [c.name for c in cut[1]] == ["f"]
    partial = _feed_in_pieces(ToolCallParser({"f"}), '<tool_call>{"name": "f", "argu', 3)
    assert partial == ('<tool_call>{"name": "f", "argu', [])


async def test_render_chat_is_the_prompt_a_request_uses(chat_engine: AsyncEngine) -> None:
    """render_chat renders tools and tool histories exactly as a request does."""
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "3 C, snow"},
    ]
    plain = chat_engine.render_chat(history[:1])
    for tools, choice in ((None, None), ([WEATHER], "auto"), ([WEATHER], "required")):
        messages = history if tools is None else history[:1]
        rendered = chat_engine.render_chat(messages, tools=tools, tool_choice=choice)
        assert rendered != plain  # the tools, or the tool result, are in the prompt
        result = await chat_engine.generate(
            messages=messages,
            tools=tools,
            tool_choice=choice,
            # A forced call needs room for its shortest complete form (refused otherwise).
            params=SamplingParams(max_tokens=1 if choice != "required" else 32, temperature=0),
        )
        assert result.usage.prompt_tokens == len(chat_engine.tokenize(rendered))
    assert "3 C, snow" in chat_engine.render_chat(history)
