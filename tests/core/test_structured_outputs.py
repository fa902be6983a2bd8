"""Constrained decoding on the real default model (SmolLM2-135M): JSON schemas, JSON
objects, regex, choice, EBNF grammars and structural tags.

Schemas carry small bounds (maxLength, maxItems, enums, number ranges) so every answer
finishes well inside max_tokens; the 100+ schema generations run concurrently.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import jsonschema
import pytest

from furiosa_integrations.backends.torch.grammar import fast_string_bounds
from furiosa_integrations.engine import (
    AsyncEngine,
    InvalidRequestError,
    SamplingParams,
    StructuredOutputsParams,
)
from tests.engine_checks import wait_idle


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


_NAME = {"type": "string", "maxLength": 20}
_SMALL_INT = {"type": "integer", "minimum": 0, "maximum": 99}

SCHEMAS: dict[str, dict[str, Any]] = {
    "person": _obj({"name": _NAME, "age": {"type": "integer", "minimum": 0, "maximum": 120}}),
    "color_enum": _obj({"color": {"type": "string", "enum": ["red", "green", "blue"]}}),
    "price_number": _obj({"price": {"type": "number", "minimum": 0, "maximum": 1000}}),
    "string_array": _obj(
        {"tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "maxItems": 3}}
    ),
    "nested_address": _obj(
        {
            "name": _NAME,
            "address": _obj({"city": _NAME, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}),
        }
    ),
    "optional_fields": _obj(
        {
            "title": _NAME,
            "subtitle": _NAME,
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        required=["title"],
    ),
    "array_of_objects": _obj(
        {
            "items": {
                "type": "array",
                "maxItems": 2,
                "items": _obj(
                    {
                        "name": {"type": "string", "maxLength": 12},
                        "qty": {"type": "integer", "minimum": 1, "maximum": 9},
                    }
                ),
            }
        }
    ),
    "nested_arrays": _obj(
        {
            "matrix": {
                "type": "array",
                "maxItems": 2,
                "items": {
                    "type": "array",
                    "maxItems": 2,
                    "items": {"type": "integer", "minimum": 0, "maximum": 9},
                },
            }
        }
    ),
    "integer_enum": _obj({"level": {"enum": [1, 2, 3]}}),
    "const_and_enum": _obj(
        {"kind": {"const": "event"}, "day": {"enum": ["mon", "tue", "wed", "thu", "fri"]}}
    ),
    "nullable": _obj({"note": {"type": ["string", "null"], "maxLength": 15}}),
    "any_of": _obj({"value": {"anyOf": [_SMALL_INT, {"type": "string", "maxLength": 5}]}}),
    "deeply_nested": _obj({"a": _obj({"b": _obj({"c": {"type": "boolean"}})})}),
    "book": _obj(
        {
            "title": _NAME,
            "year": {"type": "integer", "minimum": 1800, "maximum": 2025},
            "genres": {
                "type": "array",
                "maxItems": 2,
                "items": {"enum": ["fiction", "history", "science"]},
            },
        }
    ),
    "coordinates": _obj(
        {
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "lon": {"type": "number", "minimum": -180, "maximum": 180},
        }
    ),
    "bounded_array": _obj(
        {"numbers": {"type": "array", "minItems": 1, "maxItems": 4, "items": _SMALL_INT}}
    ),
    "optional_nested": _obj(
        {
            "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"},
            "in_stock": {"type": "boolean"},
            "size": _obj(
                {
                    "w": {"type": "integer", "minimum": 1, "maximum": 99},
                    "h": {"type": "integer", "minimum": 1, "maximum": 99},
                }
            ),
        },
        required=["sku", "in_stock"],
    ),
    "survey": _obj(
        {
            "answers": {
                "type": "array",
                "minItems": 2,
                "maxItems": 3,
                "items": {"type": "boolean"},
            },
            "score": {"type": "number", "minimum": 0, "maximum": 10},
            "comment": {"type": "string", "maxLength": 25},
        },
        required=["answers", "score"],
    ),
    "weather": _obj(
        {
            "city": {"type": "string", "maxLength": 15},
            "unit": {"enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "alerts": {"type": "boolean"},
        },
        required=["city", "unit", "days"],
    ),
    "defs_ref": {
        "type": "object",
        "$defs": {"point": _obj({"x": _SMALL_INT, "y": _SMALL_INT})},
        "properties": {"start": {"$ref": "#/$defs/point"}, "end": {"$ref": "#/$defs/point"}},
        "required": ["start", "end"],
    },
    "top_level_array": {
        "type": "array",
        "minItems": 1,
        "maxItems": 3,
        "items": {"enum": ["apple", "pear", "plum"]},
    },
}

PROMPTS = [
    "Give an example as JSON.",
    "Describe a small shop in JSON.",
    "Return a JSON object about your favourite holiday.",
    "Answer with JSON only: what did you do yesterday?",
    "Fill in the fields with made-up data.",
]


def _greedy(structured: StructuredOutputsParams, max_tokens: int = 64) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, structured_outputs=structured)


def _ask(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def _features(node: Any, found: set[str]) -> set[str]:
    """Which schema features a schema exercises (to prove the set covers the issue's list)."""
    if isinstance(node, list):
        for value in node:
            _features(value, found)
        return found
    if not isinstance(node, dict):
        return found
    kind = node.get("type")
    properties = node.get("properties", {})
    checks = {
        "nested object": kind == "object"
        and any(isinstance(v, dict) and v.get("type") == "object" for v in properties.values()),
        "optional field": kind == "object"
        and bool(set(properties) - set(node.get("required", []))),
        "array": kind == "array",
        "number": kind in ("number", "integer"),
        "boolean": kind == "boolean",
        "enum": "enum" in node,
    }
    found.update(name for name, present in checks.items() if present)
    for value in node.values():
        _features(value, found)
    return found


async def test_schemas_times_prompts_all_parse_and_validate(chat_engine: AsyncEngine) -> None:
    assert len(SCHEMAS) >= 20
    covered = _features(list(SCHEMAS.values()), set())
    assert covered >= {"nested object", "optional field", "array", "number", "boolean", "enum"}
    jobs = [(name, schema, prompt) for name, schema in SCHEMAS.items() for prompt in PROMPTS]
    results = await asyncio.gather(
        *(
            chat_engine.generate(
                messages=_ask(f"{prompt} Topic: {name.replace('_', ' ')}."),
                params=_greedy(StructuredOutputsParams(json=schema)),
            )
            for name, schema, prompt in jobs
        )
    )
    assert len(results) >= 100
    failures = []
    for (name, schema, prompt), result in zip(jobs, results, strict=True):
        completion = result.outputs[0]
        try:
            value = json.loads(completion.text)
            jsonschema.validate(value, schema)
        except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
            failures.append((name, prompt, completion.text, completion.finish_reason, str(exc)))
            continue
        # The grammar ends the answer itself: complete objects, never cut by max_tokens.
        assert completion.finish_reason == "stop", (name, completion.text)
    assert not failures, failures
    await wait_idle(chat_engine)


async def test_json_object_mode_gives_objects(chat_engine: AsyncEngine) -> None:
    results = await asyncio.gather(
        *(
            chat_engine.generate(
                messages=_ask(f"{prompt} Keep it to two short fields."),
                params=_greedy(StructuredOutputsParams(json_object=True), max_tokens=40),
            )
            for prompt in PROMPTS[:3]
        )
    )
    for result in results:
        text = result.text
        # A cut-off object (length) is the only way not to parse; the prefix is still JSON-shaped.
        if result.outputs[0].finish_reason == "stop":
            assert isinstance(json.loads(text), dict), text
        else:
            assert text.startswith("{"), text


REGEXES = [
    r"\d{3}-\d{4}",
    r"(yes|no), because [a-z ]{3,20}",
    r"[A-Z][a-z]{2,8} [0-9]{1,2}(st|nd|rd|th)",
    r"#[0-9a-f]{6}",
    r"[a-z]{2,10}@[a-z]{2,8}\.(com|org)",
]


async def test_regex_outputs_always_match(chat_engine: AsyncEngine) -> None:
    jobs = [(regex, prompt) for regex in REGEXES for prompt in PROMPTS]
    results = await asyncio.gather(
        *(
            chat_engine.generate(
                messages=_ask(prompt),
                params=_greedy(StructuredOutputsParams(regex=regex), max_tokens=32),
            )
            for regex, prompt in jobs
        )
    )
    for (regex, _), result in zip(jobs, results, strict=True):
        assert re.fullmatch(regex, result.text), (regex, result.text)
        assert result.outputs[0].finish_reason == "stop"


CHOICES = [
    ["yes", "no"],
    ["positive", "negative", "neutral"],
    ["Paris", "London", "New York", "Tokyo"],
    ['say "hi"', "back\\slash", "two words"],  # quotes and backslashes are literal
]


async def test_choice_outputs_always_one_of_the_choices(chat_engine: AsyncEngine) -> None:
    jobs = [(choices, prompt) for choices in CHOICES for prompt in PROMPTS]
    results = await asyncio.gather(
        *(
            chat_engine.generate(
                messages=_ask(prompt),
                params=_greedy(StructuredOutputsParams(choice=choices), max_tokens=16),
            )
            for choices, prompt in jobs
        )
    )
    for (choices, _), result in zip(jobs, results, strict=True):
        assert result.text in choices, (choices, result.text)


async def test_ebnf_grammar(chat_engine: AsyncEngine) -> None:
    grammar = r"""
root ::= greeting " " name "!"
greeting ::= "Hello" | "Hi" | "Good morning"
name ::= [A-Z] [a-z]{1,8}
"""
    results = await asyncio.gather(
        *(
            chat_engine.generate(
                messages=_ask(prompt),
                params=_greedy(StructuredOutputsParams(grammar=grammar), max_tokens=16),
            )
            for prompt in PROMPTS
        )
    )
    for result in results:
        assert re.fullmatch(r"(Hello|Hi|Good morning) [A-Z][a-z]{1,8}!", result.text), result.text


async def test_structural_tag_free_text_then_schema_segment(chat_engine: AsyncEngine) -> None:
    schema = _obj(
        {
            "city": {"type": "string", "maxLength": 12},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        }
    )
    tag = {
        "type": "structural_tag",
        "format": {
            "type": "sequence",
            "elements": [
                {"type": "const_string", "value": "Plan: "},
                {
                    "type": "tag",
                    "begin": "<plan>",
                    "content": {"type": "json_schema", "json_schema": schema},
                    "end": "</plan>",
                },
            ],
        },
    }
    result = await chat_engine.generate(
        messages=_ask("Plan a trip."),
        params=_greedy(StructuredOutputsParams(structural_tag=tag), max_tokens=40),
    )
    match = re.fullmatch(r"Plan: <plan>(.*)</plan>", result.text, re.S)
    assert match, result.text
    jsonschema.validate(json.loads(match.group(1)), schema)


async def test_structural_tag_triggered_segments_validate(chat_engine: AsyncEngine) -> None:
    # vLLM's legacy form: free text; after the trigger the segment must follow the schema.
    schema = _obj({"n": _SMALL_INT})
    legacy = {
        "structures": [{"begin": "<n>", "schema": schema, "end": "</n>"}],
        "triggers": ["<n>"],
    }
    structured = StructuredOutputsParams(structural_tag=json.dumps(legacy))
    result = await chat_engine.generate(
        messages=_ask('Repeat exactly: count <n>{"n": 3}</n>'),
        params=_greedy(structured, max_tokens=40),
    )
    for segment in re.findall(r"<n>(.*?)</n>", result.text, re.S):
        jsonschema.validate(json.loads(segment), schema)
    # What the grammar allows, checked on the matcher the engine would use.
    factory = chat_engine.native.constraint_factory  # type: ignore[attr-defined]
    params = _greedy(structured)
    assert factory(params).matcher.accept_string('free text <n>{"n": 3}</n> more text')
    assert not factory(params).matcher.accept_string('free text <n>{"n": "three"}')
    assert not factory(params).matcher.accept_string('free text <n>{"m": 3}')


async def test_streamed_constrained_output_equals_generate(chat_engine: AsyncEngine) -> None:
    params = _greedy(StructuredOutputsParams(json=SCHEMAS["person"]), max_tokens=32)
    chunks = [
        c async for c in chat_engine.stream(messages=_ask("A person, please."), params=params)
    ]
    whole = await chat_engine.generate(messages=_ask("A person, please."), params=params)
    assert len(chunks) > 3
    assert "".join(c.text for c in chunks) == whole.text
    jsonschema.validate(json.loads(whole.text), SCHEMAS["person"])


async def test_constrained_and_unconstrained_batched_equal_solo(chat_engine: AsyncEngine) -> None:
    constrained = (
        _ask("Describe a person."),
        _greedy(StructuredOutputsParams(json=SCHEMAS["person"]), max_tokens=32),
    )
    plain = (_ask("Describe a person."), SamplingParams(max_tokens=32, temperature=0.0))
    regex = (_ask("A phone number?"), _greedy(StructuredOutputsParams(regex=REGEXES[0])))
    requests = [constrained, plain, regex]
    solo = [await chat_engine.generate(messages=m, params=p) for m, p in requests]
    together = await asyncio.gather(
        *(chat_engine.generate(messages=m, params=p) for m, p in requests)
    )
    for alone, batched in zip(solo, together, strict=True):
        assert batched.outputs[0].token_ids == alone.outputs[0].token_ids
        assert batched.text == alone.text
    assert solo[0].text != solo[1].text  # the constraint really changed the answer
    json.loads(solo[0].text)


@pytest.mark.parametrize(
    "structured",
    [
        StructuredOutputsParams(json={"type": "object", "properties": {"a": {"type": "strin"}}}),
        StructuredOutputsParams(json={"type": "object", "required": "a"}),
        StructuredOutputsParams(regex="[a-"),
        StructuredOutputsParams(regex="(ab"),
        StructuredOutputsParams(grammar="root ::= undefined_rule"),
        StructuredOutputsParams(grammar="this is not ebnf"),
        StructuredOutputsParams(
            structural_tag={"type": "structural_tag", "format": {"type": "nope"}}
        ),
        StructuredOutputsParams(structural_tag="{not json"),
    ],
    ids=lambda s: s.kind(),
)
async def test_invalid_constraint_raises_before_queuing(
    chat_engine: AsyncEngine, structured: StructuredOutputsParams
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        chat_engine.stream(messages=_ask("hi"), params=_greedy(structured))
    assert structured.kind() in str(info.value)
    stats = chat_engine.stats()
    assert stats.request_ids == stats.waiting == 0
    # The engine keeps serving.
    ok = await chat_engine.generate(
        messages=_ask("hi"), params=_greedy(StructuredOutputsParams(choice=["a", "b"]))
    )
    assert ok.text in ("a", "b")


def test_compiled_grammars_are_cached(chat_engine: AsyncEngine) -> None:
    factory = chat_engine.native.constraint_factory  # type: ignore[attr-defined]
    schema = _obj({"cached": {"type": "boolean"}})
    first = factory.compile(StructuredOutputsParams(json=schema))
    # The same schema as a JSON string with other key order hits the same entry.
    again = factory.compile(
        StructuredOutputsParams(json=json.dumps(dict(reversed(schema.items()))))
    )
    assert again is first
    assert factory.compile(StructuredOutputsParams(regex="a+")) is factory.compile(
        StructuredOutputsParams(regex="a+")
    )


def test_short_bounded_strings_become_patterns_with_the_same_lengths() -> None:
    schema = _obj(
        {
            "short": {"type": "string", "minLength": 2, "maxLength": 5},
            "long": {"type": "string", "maxLength": 500},  # left to xgrammar
            "patterned": {"type": "string", "maxLength": 5, "pattern": "^a+$"},  # untouched
            "list": {"type": "array", "items": {"type": "string", "maxLength": 3}},
        }
    )
    fast = fast_string_bounds(schema)
    assert fast["properties"]["long"] == schema["properties"]["long"]
    assert fast["properties"]["patterned"] == schema["properties"]["patterned"]
    short = fast["properties"]["short"]
    assert "maxLength" not in short and "minLength" not in short
    for text, ok in [
        ("ab", True),
        ("abcde", True),
        ("a", False),
        ("abcdef", False),
        ('a"b', False),
    ]:
        valid = jsonschema.Draft202012Validator(short).is_valid(text)
        assert valid is ok, (text, short)
    assert jsonschema.Draft202012Validator(fast["properties"]["list"]).is_valid(["abc"])
    assert not jsonschema.Draft202012Validator(fast["properties"]["list"]).is_valid(["abcd"])
