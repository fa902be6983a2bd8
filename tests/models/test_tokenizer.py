"""FastTokenizer (tokenizers + our chat-template renderer) against transformers' tokenizer.

The engine uses FastTokenizer for start-up speed; everything it produces must equal what
transformers' tokenizer produces for the same files: ids, truncation, decoded text and
rendered chat prompts.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import jinja2
import pytest

from furiosa_integrations.models.resolve import default_embedding_dir, resolve_model
from furiosa_integrations.models.tokenizer import FastTokenizer, load_transformers_tokenizer

TEXTS = [
    "Hello world",
    "  leading and trailing spaces  ",
    "Ünïcödé, emoji 🚀 and CJK 漢字",
    "<|im_start|>user\nhi<|im_end|>",
    "[CLS] already special [SEP]",
    "tabs\tand\nnewlines\n\n",
    "Don't stop , isn't it ? yes !",
    "",
    "word " * 300,
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]

CONVERSATIONS: list[list[dict[str, Any]]] = [
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
    [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
    ],
    [
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2", "reasoning_content": "one plus one"},
        {"role": "user", "content": "and 2+2?"},
    ],
]

# Exercises what templates use: namespace, loop controls, tojson options, the generation
# tag, reasoning aliasing, special tokens and extra kwargs.
TEMPLATE = """
{%- set ns = namespace(n=0) -%}
{{ bos_token }}{% if tools %}TOOLS {{ tools | tojson(indent=2) }}
{% endif %}
{%- for m in messages -%}
{%- if m.role == 'tool' %}{% continue %}{% endif -%}
{%- set ns.n = ns.n + 1 -%}
[{{ m.role }}]{% if m.thinking %}<think>{{ m.thinking }}</think>{% endif %}
{%- if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}
{%- else %}{{ m.content }}{% endif %}
{%- if m.tool_calls %}{{ m.tool_calls | tojson }}{% endif %}{{ eos_token }}
{% endfor -%}
count={{ ns.n }} flag={{ enable_thinking | default('unset') }}
{%- if add_generation_prompt %}[assistant]{% endif -%}
"""


@pytest.fixture(scope="module", params=["chat", "embed"])
def pair(request: pytest.FixtureRequest) -> tuple[FastTokenizer, Any]:
    if request.param == "chat":
        path = Path(resolve_model(None, "generate").path)
    else:
        path = default_embedding_dir()
    return FastTokenizer(path), load_transformers_tokenizer(path)


def test_encode_matches(pair: tuple[FastTokenizer, Any]) -> None:
    fast, reference = pair
    for text in TEXTS:
        for special in (True, False):
            assert fast.encode(text, add_special_tokens=special) == reference.encode(
                text, add_special_tokens=special
            ), (text, special)


def test_batch_and_truncation_match(pair: tuple[FastTokenizer, Any]) -> None:
    fast, reference = pair
    assert fast(TEXTS)["input_ids"] == reference(TEXTS)["input_ids"]
    for limit in (1, 3, 8, 64):
        ours = fast(TEXTS, add_special_tokens=True, truncation=True, max_length=limit)
        theirs = reference(TEXTS, add_special_tokens=True, truncation=True, max_length=limit)
        assert ours["input_ids"] == theirs["input_ids"], limit
    assert fast("one text")["input_ids"] == reference("one text")["input_ids"]


def test_decode_matches(pair: tuple[FastTokenizer, Any]) -> None:
    fast, reference = pair
    rng = random.Random(0)
    samples = [reference.encode(t) for t in TEXTS]
    samples += [[rng.randrange(len(reference)) for _ in range(12)] for _ in range(50)]
    for ids in samples:
        for skip in (True, False):
            assert fast.decode(ids, skip_special_tokens=skip) == reference.decode(
                ids, skip_special_tokens=skip
            ), (ids, skip)


def test_special_tokens_match(pair: tuple[FastTokenizer, Any]) -> None:
    fast, reference = pair
    assert fast.special_tokens_map == reference.special_tokens_map
    for name in ("eos_token", "bos_token", "pad_token", "eos_token_id", "pad_token_id"):
        assert getattr(fast, name) == getattr(reference, name), name
    assert len(fast) == len(reference)
    # Anything else goes to transformers' tokenizer, loaded on first use.
    assert fast.convert_ids_to_tokens([5, 6]) == reference.convert_ids_to_tokens([5, 6])


def _outcome(render: Any, conversation: list[dict[str, Any]], kwargs: dict[str, Any]) -> Any:
    """The rendered text, or the error's type and message (the default template refuses
    an assistant turn without content; both renderers must refuse it alike)."""
    try:
        text = render(conversation, **kwargs)
    except jinja2.TemplateError as exc:
        return (type(exc).__name__, str(exc))
    assert isinstance(text, str) and text
    return text


@pytest.mark.parametrize("conversation", CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template_renders_the_same(
    conversation: list[dict[str, Any]], add_generation_prompt: bool
) -> None:
    path = Path(resolve_model(None, "generate").path)
    fast, reference = FastTokenizer(path), load_transformers_tokenizer(path)
    for template in (None, TEMPLATE):
        for tools in (None, TOOLS):
            kwargs: dict[str, Any] = dict(
                tools=tools, add_generation_prompt=add_generation_prompt, tokenize=False
            )
            if template is not None:
                kwargs.update(chat_template=template, enable_thinking=False)
            ours = _outcome(fast.apply_chat_template, conversation, kwargs)
            assert ours == _outcome(reference.apply_chat_template, conversation, kwargs)
    tokens = fast.apply_chat_template(
        conversation, chat_template=TEMPLATE, add_generation_prompt=add_generation_prompt
    )
    expected = reference.apply_chat_template(
        conversation, chat_template=TEMPLATE, add_generation_prompt=add_generation_prompt
    )
    assert tokens["input_ids"] == expected["input_ids"]


def test_template_errors_surface_as_jinja_errors() -> None:
    fast = FastTokenizer(Path(resolve_model(None, "generate").path))
    strict = "{% if messages[0].role != 'system' %}{{ raise_exception('system first') }}{% endif %}"
    with pytest.raises(jinja2.TemplateError, match="system first"):
        fast.apply_chat_template([{"role": "user", "content": "x"}], chat_template=strict)
    sneaky = "{% set ns = namespace() %}{% set ns._x = 1 %}"
    with pytest.raises(jinja2.exceptions.SecurityError):
        fast.apply_chat_template([{"role": "user", "content": "x"}], chat_template=sneaky)
