"""Every adapter class refuses an argument it does not know, naming the closest field, at
construction and per call; LangChain's ``model_kwargs`` takes what is no near miss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage

from furiosa_integrations.engine import AsyncEngine, UnknownOptionError
from furiosa_integrations.langchain import FuriosaChat, FuriosaEmbeddings
from furiosa_integrations.langchain import FuriosaLLM as LangChainLLM
from furiosa_integrations.llama_index import FuriosaEmbedding, FuriosaLLM

CONSTRUCTIONS: list[tuple[Callable[[], Any], str, str]] = [
    (lambda: FuriosaChat(temprature=0.5), "temprature", "temperature"),  # type: ignore[call-arg]
    (lambda: LangChainLLM(max_token=5), "max_token", "max_tokens"),  # type: ignore[call-arg]
    (lambda: FuriosaEmbeddings(normalise=False), "normalise", "normalize"),  # type: ignore[call-arg]
    (lambda: FuriosaLLM(max_token=5), "max_token", "max_tokens"),
    (lambda: FuriosaEmbedding(embed_batchsize=8), "embed_batchsize", "embed_batch_size"),
]


@pytest.mark.parametrize(("build", "typo", "field"), CONSTRUCTIONS)
def test_a_misspelt_argument_is_refused_at_construction(
    build: Callable[[], Any], typo: str, field: str
) -> None:
    with pytest.raises(UnknownOptionError, match=f"'{typo}' \\(did you mean '{field}'\\?\\)"):
        build()


def test_langchain_moves_what_is_no_near_miss_to_model_kwargs() -> None:
    with pytest.warns(UserWarning, match="transferred to model_kwargs"):
        chat = FuriosaChat(kv_transfer_params={"role": "prefill"})  # type: ignore[call-arg]
    assert chat.model_kwargs == {"kv_transfer_params": {"role": "prefill"}}
    assert chat._sampling_params(None, {}).extra_args == {"kv_transfer_params": {"role": "prefill"}}


@pytest.mark.models
def test_a_misspelt_option_is_refused_per_call(chat_engine: AsyncEngine) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: FuriosaChat(max_tokens=2).invoke("hi", temprature=0.5),
        lambda: LangChainLLM(max_tokens=2).invoke("hi", max_token=3),
        lambda: FuriosaLLM(max_tokens=2).chat([ChatMessage(content="hi")], temprature=0.5),
        lambda: FuriosaLLM(max_tokens=2).complete("hi", stops=["x"]),
    ]
    for call in calls:
        with pytest.raises(UnknownOptionError, match="did you mean"):
            call()
    assert chat_engine.stats().request_ids == 0
