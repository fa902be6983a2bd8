"""The shared engine and the torch engine on the real default chat model."""

from __future__ import annotations

import asyncio
import math

import pytest

from furiosa_integrations.engine import AsyncEngine, SamplingParams
from tests.engine_checks import wait_idle

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = SamplingParams(max_tokens=24, temperature=0.0)


def story(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write one sentence about the number {i}."}]


async def test_answers_paris(chat_engine: AsyncEngine) -> None:
    result = await chat_engine.generate(messages=QUESTION, params=GREEDY)
    assert "Paris" in result.text
    assert result.outputs[0].finish_reason == "stop"


async def test_stream_equals_generate(chat_engine: AsyncEngine) -> None:
    params = SamplingParams(max_tokens=20, temperature=0.0, ignore_eos=True)
    chunks = [c async for c in chat_engine.stream(messages=story(3), params=params)]
    whole = await chat_engine.generate(messages=story(3), params=params)
    assert len(chunks) > 5  # it really streamed, token by token
    assert "".join(c.text for c in chunks) == whole.text
    assert sum(len(c.token_ids) for c in chunks) == 20
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None and all(c.usage is None for c in chunks[:-1])


async def test_usage_counts(chat_engine: AsyncEngine) -> None:
    prompt = chat_engine.render_chat(QUESTION)
    result = await chat_engine.generate(
        prompt, params=SamplingParams(max_tokens=7, temperature=0, ignore_eos=True)
    )
    assert result.usage.prompt_tokens == len(chat_engine.tokenize(prompt))
    assert result.usage.completion_tokens == 7 == len(result.outputs[0].token_ids)
    assert result.usage.total_tokens == result.usage.prompt_tokens + 7


async def test_chat_template_rendering(chat_engine: AsyncEngine) -> None:
    text = chat_engine.render_chat(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    # Content given as parts is flattened; the template's default system prompt appears.
    parts = chat_engine.render_chat([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    assert parts.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert parts.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


async def test_prompt_forms_agree(chat_engine: AsyncEngine) -> None:
    prompt = chat_engine.render_chat(QUESTION)
    by_messages = await chat_engine.generate(messages=QUESTION, params=GREEDY)
    by_text = await chat_engine.generate(prompt, params=GREEDY)
    by_ids = await chat_engine.generate(chat_engine.tokenize(prompt), params=GREEDY)
    assert by_messages.text == by_text.text == by_ids.text


async def test_max_tokens_and_ignore_eos(chat_engine: AsyncEngine) -> None:
    short = await chat_engine.generate(
        messages=QUESTION, params=SamplingParams(max_tokens=3, temperature=0)
    )
    assert len(short.outputs[0].token_ids) == 3 and short.outputs[0].finish_reason == "length"
    natural = await chat_engine.generate(
        messages=QUESTION, params=SamplingParams(max_tokens=40, temperature=0)
    )
    assert natural.outputs[0].finish_reason == "stop" and natural.outputs[0].stop_reason == 2
    forced = await chat_engine.generate(
        messages=QUESTION, params=SamplingParams(max_tokens=40, temperature=0, ignore_eos=True)
    )
    assert len(forced.outputs[0].token_ids) == 40 and forced.outputs[0].finish_reason == "length"


async def test_min_tokens_delays_eos(chat_engine: AsyncEngine) -> None:
    natural = await chat_engine.generate(
        messages=QUESTION, params=SamplingParams(max_tokens=40, temperature=0)
    )
    n = len(natural.outputs[0].token_ids)
    longer = await chat_engine.generate(
        messages=QUESTION, params=SamplingParams(max_tokens=60, min_tokens=n + 5, temperature=0)
    )
    assert len(longer.outputs[0].token_ids) >= n + 5


async def test_stop_token_ids(chat_engine: AsyncEngine) -> None:
    natural = await chat_engine.generate(messages=QUESTION, params=GREEDY)
    third = natural.outputs[0].token_ids[2]
    stopped = await chat_engine.generate(
        messages=QUESTION, params=GREEDY.clone(stop_token_ids=[third])
    )
    out = stopped.outputs[0]
    assert out.token_ids == natural.outputs[0].token_ids[:3]
    assert out.finish_reason == "stop" and out.stop_reason == third
    # The stop token ends the text without being part of it.
    assert out.text == chat_engine.tokenizer.decode(natural.outputs[0].token_ids[:2])


async def test_stop_strings_across_token_boundaries(chat_engine: AsyncEngine) -> None:
    natural = (await chat_engine.generate(messages=QUESTION, params=GREEDY)).text
    assert "capital of France" in natural
    # "tal of Fr" starts inside one token and ends inside another.
    stop = "tal of Fr"
    tokens = [chat_engine.tokenizer.decode([t]) for t in chat_engine.tokenize(natural)]
    assert stop not in tokens
    cut = await chat_engine.generate(messages=QUESTION, params=GREEDY.clone(stop=[stop, "zzz"]))
    assert cut.text == natural[: natural.index(stop)]
    assert cut.outputs[0].finish_reason == "stop" and cut.outputs[0].stop_reason == stop
    kept = await chat_engine.generate(
        messages=QUESTION, params=GREEDY.clone(stop=[stop], include_stop_str_in_output=True)
    )
    assert kept.text == natural[: natural.index(stop) + len(stop)]
    # Streaming never leaks a prefix of the stop string that it later has to take back.
    streamed = [
        c.text
        async for c in chat_engine.stream(messages=QUESTION, params=GREEDY.clone(stop=[stop]))
    ]
    assert "".join(streamed) == cut.text
    await wait_idle(chat_engine)


async def test_seed_reproducible_and_temperature(chat_engine: AsyncEngine) -> None:
    params = SamplingParams(max_tokens=16, temperature=1.2, seed=1234, ignore_eos=True)
    a = await chat_engine.generate(messages=story(7), params=params)
    # Same seed, run next to other traffic: same tokens.
    b, _ = await asyncio.gather(
        chat_engine.generate(messages=story(7), params=params),
        chat_engine.generate(messages=story(8), params=params.clone(seed=99)),
    )
    assert a.outputs[0].token_ids == b.outputs[0].token_ids
    samples = {
        tuple(
            (await chat_engine.generate(messages=story(7), params=params.clone(seed=s)))
            .outputs[0]
            .token_ids
        )
        for s in range(4)
    }
    assert len(samples) > 1  # temperature > 0 really samples


async def test_top_k_top_p_min_p_restrict_choices(chat_engine: AsyncEngine) -> None:
    greedy = await chat_engine.generate(
        messages=story(5), params=SamplingParams(max_tokens=12, temperature=0, ignore_eos=True)
    )
    # top_k=1, a tiny top_p, or min_p=1 leave only the most likely token: sampling equals greedy.
    for option in ({"top_k": 1}, {"top_p": 1e-6}, {"min_p": 1.0}):
        sampled = await chat_engine.generate(
            messages=story(5),
            params=SamplingParams(
                max_tokens=12, temperature=1.5, seed=7, ignore_eos=True, **option
            ),  # type: ignore[arg-type]
        )
        assert sampled.outputs[0].token_ids == greedy.outputs[0].token_ids, option


async def test_repetition_penalty_changes_output(chat_engine: AsyncEngine) -> None:
    params = SamplingParams(max_tokens=40, temperature=0, ignore_eos=True)
    plain = await chat_engine.generate("one two three one two three one two three", params=params)
    penalized = await chat_engine.generate(
        "one two three one two three one two three", params=params.clone(repetition_penalty=2.0)
    )
    assert plain.outputs[0].token_ids != penalized.outputs[0].token_ids

    # Penalized output repeats itself less.
    def repeats(ids: list[int]) -> int:
        return len(ids) - len(set(ids))

    assert repeats(penalized.outputs[0].token_ids) < repeats(plain.outputs[0].token_ids)


async def test_n_completions(chat_engine: AsyncEngine) -> None:
    params = SamplingParams(n=3, max_tokens=10, temperature=1.0, seed=5, ignore_eos=True)
    result = await chat_engine.generate(messages=story(2), params=params)
    assert [o.index for o in result.outputs] == [0, 1, 2]
    assert all(len(o.token_ids) == 10 for o in result.outputs)
    assert len({tuple(o.token_ids) for o in result.outputs}) > 1
    assert result.usage.completion_tokens == 30
    again = await chat_engine.generate(messages=story(2), params=params)
    assert [o.token_ids for o in again.outputs] == [o.token_ids for o in result.outputs]
    await wait_idle(chat_engine)


async def test_logprobs(chat_engine: AsyncEngine) -> None:
    result = await chat_engine.generate(
        messages=QUESTION, params=GREEDY.clone(max_tokens=6, logprobs=3)
    )
    out = result.outputs[0]
    assert out.logprobs is not None and len(out.logprobs) == len(out.token_ids)
    for token_id, lp in zip(out.token_ids, out.logprobs, strict=True):
        assert lp.token_id == token_id and lp.logprob <= 0.0
        assert len(lp.top_logprobs) == 3
        # Greedy picks the most likely token, so it heads the top list.
        assert lp.top_logprobs[0][0] == token_id
        assert math.isclose(lp.top_logprobs[0][2], lp.logprob, abs_tol=1e-5)
        assert lp.top_logprobs[0][2] >= lp.top_logprobs[1][2] >= lp.top_logprobs[2][2]
    plain = await chat_engine.generate(messages=QUESTION, params=GREEDY.clone(max_tokens=6))
    assert plain.outputs[0].logprobs is None


async def test_concurrent_greedy_equals_solo(chat_engine: AsyncEngine) -> None:
    params = SamplingParams(max_tokens=16, temperature=0.0)
    prompts = [story(i) for i in range(32)]
    together = await asyncio.gather(
        *(chat_engine.generate(messages=p, params=params) for p in prompts)
    )
    solo = [
        (await chat_engine.generate(messages=p, params=params)).outputs[0].token_ids
        for p in prompts
    ]
    assert [r.outputs[0].token_ids for r in together] == solo
    await wait_idle(chat_engine)


async def test_late_request_gets_first_token_while_long_one_decodes(
    chat_engine: AsyncEngine,
) -> None:
    native = chat_engine.native
    long_stream = chat_engine.stream(
        messages=story(1), params=SamplingParams(max_tokens=120, temperature=0, ignore_eos=True)
    )
    long_tokens = 0
    late_first_at: int | None = None

    async def consume_long() -> None:
        nonlocal long_tokens
        async for chunk in long_stream:
            long_tokens += len(chunk.token_ids)

    task = asyncio.create_task(consume_long())
    while long_tokens < 20:
        await asyncio.sleep(0.01)
    steps_before = native.num_steps  # type: ignore[attr-defined]
    async for chunk in chat_engine.stream(
        messages=QUESTION, params=SamplingParams(max_tokens=1, temperature=0)
    ):
        late_first_at = native.num_steps - steps_before  # type: ignore[attr-defined]
        assert chunk.token_ids
        break
    assert long_tokens < 120, "the late request waited for the long one to finish"
    assert late_first_at is not None and late_first_at <= 3
    await task
    assert long_tokens == 120
    await wait_idle(chat_engine)


async def test_cancel_by_break_releases_everything(chat_engine: AsyncEngine) -> None:
    stream = chat_engine.stream(
        messages=story(4),
        params=SamplingParams(max_tokens=200, temperature=0, ignore_eos=True),
        request_id="break-me",
    )
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_idle(chat_engine)
    # The id is free again.
    result = await chat_engine.generate(messages=QUESTION, params=GREEDY, request_id="break-me")
    assert "Paris" in result.text


async def test_cancel_by_break_without_aclose(chat_engine: AsyncEngine) -> None:
    async def first_two() -> int:
        count = 0
        async for _ in chat_engine.stream(
            messages=story(4), params=SamplingParams(max_tokens=200, temperature=0, ignore_eos=True)
        ):
            count += 1
            if count == 2:
                break
        return count

    assert await first_two() == 2
    await wait_idle(chat_engine)  # the abandoned generator is finalized and aborted


async def test_cancel_by_task_cancel(chat_engine: AsyncEngine) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in chat_engine.stream(
            messages=story(6), params=SamplingParams(max_tokens=300, temperature=0, ignore_eos=True)
        ):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    assert chat_engine.stats().running >= 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(chat_engine)


async def test_cancel_by_timeout(chat_engine: AsyncEngine) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            chat_engine.generate(
                messages=story(6),
                params=SamplingParams(max_tokens=300, temperature=0, ignore_eos=True),
            ),
            timeout=0.5,
        )
    await wait_idle(chat_engine)


async def test_cancel_by_abort(chat_engine: AsyncEngine) -> None:
    chunks = []

    async def consume() -> None:
        async for chunk in chat_engine.stream(
            messages=story(9),
            params=SamplingParams(max_tokens=300, temperature=0, ignore_eos=True),
            request_id="abort-me",
        ):
            chunks.append(chunk)

    task = asyncio.create_task(consume())
    while len(chunks) < 3:
        await asyncio.sleep(0.01)
    await chat_engine.abort("abort-me")
    await asyncio.wait_for(task, timeout=10)
    assert chunks[-1].finish_reason == "abort"
    assert len(chunks) < 300
    await wait_idle(chat_engine)


async def test_other_requests_unaffected_by_cancellation(chat_engine: AsyncEngine) -> None:
    expected = (await chat_engine.generate(messages=QUESTION, params=GREEDY)).text
    victim = asyncio.create_task(
        chat_engine.generate(
            messages=story(1), params=SamplingParams(max_tokens=300, temperature=0, ignore_eos=True)
        )
    )
    survivor = asyncio.create_task(chat_engine.generate(messages=QUESTION, params=GREEDY))
    await asyncio.sleep(0.3)
    victim.cancel()
    assert (await survivor).text == expected
    await asyncio.gather(victim, return_exceptions=True)
    await wait_idle(chat_engine)


def test_sync_bridge(chat_engine: AsyncEngine) -> None:
    result = chat_engine.generate_sync(messages=QUESTION, params=GREEDY)
    assert "Paris" in result.text
    streamed = "".join(c.text for c in chat_engine.stream_sync(messages=QUESTION, params=GREEDY))
    assert streamed == result.text
    # Breaking out of a sync stream aborts the request too.
    for _ in chat_engine.stream_sync(
        messages=story(3), params=SamplingParams(max_tokens=200, temperature=0, ignore_eos=True)
    ):
        break
    from tests.engine_checks import wait_idle_sync

    wait_idle_sync(chat_engine)


async def test_prefix_caching_reuses_shared_context(chat_engine: AsyncEngine) -> None:
    native = chat_engine.native
    context = " ".join(f"Fact {i}: the code word for item {i} is w{i * 7 % 97}." for i in range(40))
    questions = [f"What is the code word for item {i}?" for i in (3, 11, 25, 38)]
    messages = [
        [{"role": "system", "content": context}, {"role": "user", "content": q}] for q in questions
    ]
    params = SamplingParams(max_tokens=8, temperature=0)
    native.enable_prefix_caching = False  # type: ignore[attr-defined]
    try:
        before = native.num_prefill_tokens  # type: ignore[attr-defined]
        cold = await asyncio.gather(
            *(chat_engine.generate(messages=m, params=params) for m in messages)
        )
        cold_tokens = native.num_prefill_tokens - before  # type: ignore[attr-defined]
    finally:
        native.enable_prefix_caching = True  # type: ignore[attr-defined]
    # Sharing between running requests only: nothing kept from earlier tests' turns.
    if native.finished_sequences is not None:  # type: ignore[attr-defined]
        native.finished_sequences.clear()  # type: ignore[attr-defined]
    before = native.num_prefill_tokens  # type: ignore[attr-defined]
    warm = await asyncio.gather(
        *(chat_engine.generate(messages=m, params=params) for m in messages)
    )
    warm_tokens = native.num_prefill_tokens - before  # type: ignore[attr-defined]
    assert [r.text for r in warm] == [r.text for r in cold]
    assert all(r.usage.cached_tokens == 0 for r in cold)
    prompt_len = cold[0].usage.prompt_tokens
    assert prompt_len > 500
    # The first request computes the context; the other three copy it.
    assert warm_tokens < cold_tokens / 2
    assert sum(r.usage.cached_tokens > prompt_len // 2 for r in warm) == 3
    await wait_idle(chat_engine)
