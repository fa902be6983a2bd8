"""``reasoning=``: on, off or an effort level, mapped onto each template's own switch, and
earlier turns' reasoning fed back to templates that render it."""

from __future__ import annotations

import pytest

from furiosa_integrations.core.text.reasoning_switch import apply_reasoning, template_switch
from furiosa_integrations.engine import AsyncEngine, InvalidRequestError, SamplingParams
from tests.core.text.test_reasoning import MAY_THINK, OPENS_THINK

_TURNS = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
# gpt-oss style: an effort level in the system turn, no way to turn reasoning off.
EFFORT = (
    "{% set effort = reasoning_effort | default('medium') %}"
    "{% if effort not in ['low', 'medium', 'high'] %}{{ raise_exception('bad effort') }}{% endif %}"
    "<|im_start|>system\nReasoning: {{ effort }}<|im_end|>\n"
    + _TURNS
    + "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)
# DeepSeek V3.1 style: a ``thinking`` variable opens or closes the section.
THINKING_VAR = _TURNS + (
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if thinking %}<think>\n{% else %}</think>\n{% endif %}{% endif %}"
)
# Qwen3 style feedback: earlier answers carry their reasoning.
FEEDBACK = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and m.reasoning_content %}<think>\n{{ m.reasoning_content }}"
    "\n</think>\n\n{% endif %}{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
ASK = [{"role": "user", "content": "What is two plus two?"}]


def test_the_switch_is_read_from_the_template(chat_engine: AsyncEngine) -> None:
    may = template_switch(MAY_THINK)
    assert (may.thinks, may.toggle, may.effort) == (True, "enable_thinking", None)
    effort = template_switch(EFFORT)
    assert (effort.toggle, effort.effort, effort.levels) == (
        None,
        "reasoning_effort",
        ("low", "medium", "high"),
    )
    assert template_switch(THINKING_VAR).toggle == "thinking"
    always = template_switch(OPENS_THINK)
    assert always.thinks and always.toggle is None
    assert not template_switch(str(chat_engine.tokenizer.chat_template)).thinks
    # ``m.thinking`` (a message's field) and text are not the switch.
    assert template_switch("{{ m.thinking }} thinking <think>").toggle is None


def test_reasoning_maps_onto_the_switch() -> None:
    assert apply_reasoning(MAY_THINK, None, None) is None
    assert apply_reasoning(MAY_THINK, {"x": 1}, False) == {"x": 1, "enable_thinking": False}
    assert apply_reasoning(MAY_THINK, {"enable_thinking": False}, True) == {"enable_thinking": True}
    assert apply_reasoning(THINKING_VAR, None, True) == {"thinking": True}
    assert apply_reasoning(EFFORT, None, "high") == {"reasoning_effort": "high"}
    assert apply_reasoning(EFFORT, None, True) == {}
    assert apply_reasoning(OPENS_THINK, None, True) == {}  # always on
    assert apply_reasoning("{{ messages }}", None, False) == {}  # no thinking: already off


@pytest.mark.parametrize(
    ("template", "reasoning", "message"),
    [
        ("{{ messages }}", True, "has no reasoning section"),
        ("{{ messages }}", "high", "has no reasoning section"),
        (OPENS_THINK, False, "always reasons"),
        (EFFORT, False, "always reasons"),
        (MAY_THINK, "high", "has no effort levels"),
        (EFFORT, "extreme", r"not one of this chat template's effort levels \['low'"),
        (MAY_THINK, 1, "must be True, False or an effort level"),
    ],
)
def test_what_a_template_cannot_express_is_refused(
    chat_engine: AsyncEngine, template: str, reasoning: object, message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        chat_engine.stream(
            messages=ASK,
            reasoning=reasoning,  # type: ignore[arg-type]
            chat_template_kwargs={"chat_template": template},
        )
    stats = chat_engine.stats()
    assert stats.request_ids == stats.waiting == stats.running == 0


async def test_reasoning_on_and_off_in_the_prompt_and_the_output(chat_engine: AsyncEngine) -> None:
    kwargs = {"chat_template": MAY_THINK}
    off = chat_engine.render_chat(ASK, chat_template_kwargs=kwargs, reasoning=False)
    on = chat_engine.render_chat(ASK, chat_template_kwargs=kwargs, reasoning=True)
    assert off.endswith("<think>\n\n</think>\n\n") and on.endswith("<|im_start|>assistant\n")
    high = chat_engine.render_chat(
        ASK, chat_template_kwargs={"chat_template": EFFORT}, reasoning="high"
    )
    assert "Reasoning: high" in high
    assert "Reasoning: medium" in chat_engine.render_chat(
        ASK, chat_template_kwargs={"chat_template": EFFORT}
    )
    result = await chat_engine.generate(
        messages=ASK,
        params=SamplingParams(max_tokens=8, temperature=0),
        reasoning=False,
        chat_template_kwargs={"chat_template": THINKING_VAR},
    )
    assert result.outputs[0].reasoning_text == "" and result.text
    assert result.usage.prompt_tokens == len(
        chat_engine.tokenize(
            chat_engine.render_chat(
                ASK, chat_template_kwargs={"chat_template": THINKING_VAR}, reasoning=False
            )
        )
    )


def test_earlier_reasoning_is_fed_back_to_templates_that_render_it(
    chat_engine: AsyncEngine,
) -> None:
    history = [
        *ASK,
        {"role": "assistant", "content": "4.", "reasoning_content": "Two and two make four."},
        {"role": "user", "content": "And three plus three?"},
    ]
    prompt = chat_engine.render_chat(history, chat_template_kwargs={"chat_template": FEEDBACK})
    assert (
        "<|im_start|>assistant\n<think>\nTwo and two make four.\n</think>\n\n4.<|im_end|>" in prompt
    )
    # Templates that drop earlier reasoning (and the default one) do not show it.
    assert "Two and two" not in chat_engine.render_chat(history)
