"""The cache of finished sequences: the next turn of a conversation, and the next step of
an agent loop, prefill only what is new, and answer exactly as without the cache."""

from __future__ import annotations

import pytest

from furiosa_integrations.engine import AsyncEngine, SamplingParams, get_engine
from tests.engine_checks import wait_idle

pytestmark = pytest.mark.models

GREEDY = SamplingParams(temperature=0.0, max_tokens=24)
SYSTEM = {"role": "system", "content": "You are a patient tutor who answers in one sentence."}


@pytest.fixture(scope="module")
def uncached(chat_engine: AsyncEngine) -> AsyncEngine:
    return get_engine(finished_cache_bytes=0)


async def _conversation(engine: AsyncEngine, turns: int) -> list[tuple[str, int]]:
    """Each turn's answer and the prompt tokens the engine had to compute for it."""
    messages = [SYSTEM]
    out = []
    for i in range(turns):
        messages.append({"role": "user", "content": f"Give me fact {i + 1} about the moon."})
        before = engine.native.num_prefill_tokens  # type: ignore[attr-defined]
        result = await engine.generate(messages=messages, params=GREEDY)
        computed = engine.native.num_prefill_tokens - before  # type: ignore[attr-defined]
        out.append((result.text, computed))
        messages.append({"role": "assistant", "content": result.text})
    return out


async def test_a_conversation_prefills_only_the_new_turn(
    chat_engine: AsyncEngine, uncached: AsyncEngine
) -> None:
    cached = await _conversation(chat_engine, turns=4)
    plain = await _conversation(uncached, turns=4)
    assert [text for text, _ in cached] == [text for text, _ in plain]  # same answers
    for (_, with_cache), (_, without) in zip(cached[1:], plain[1:], strict=True):
        # The new user message and the template's turn markers; the rest is kept.
        assert with_cache < 40 < without
    assert plain[-1][1] > 5 * cached[-1][1]
    await wait_idle(chat_engine)


async def test_an_agent_loop_reuses_every_earlier_step(chat_engine: AsyncEngine) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look a word up in the dictionary.",
                "parameters": {
                    "type": "object",
                    "properties": {"word": {"type": "string"}},
                    "required": ["word"],
                },
            },
        }
    ]
    messages: list[dict[str, object]] = [{"role": "user", "content": "What does 'tide' mean?"}]
    computed = []
    for step in range(4):
        before = chat_engine.native.num_prefill_tokens  # type: ignore[attr-defined]
        result = await chat_engine.generate(
            messages=messages, tools=tools, tool_choice="required", params=GREEDY
        )
        computed.append(chat_engine.native.num_prefill_tokens - before)  # type: ignore[attr-defined]
        [call] = result.outputs[0].tool_calls[:1]
        messages.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call.id, "content": f"Result {step}."})
    # Each step after the first computes its new messages only, not the history again.
    assert all(later < computed[0] for later in computed[1:])
    await wait_idle(chat_engine)


def test_the_budget_is_kept(chat_engine: AsyncEngine) -> None:
    kept = chat_engine.native.finished_sequences  # type: ignore[attr-defined]
    assert kept is not None and len(kept) > 0
    assert kept.used_bytes <= kept.max_bytes and kept.hits > 0
