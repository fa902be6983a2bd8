"""Fixtures for the LlamaIndex adapter tests: offline guards and shared adapters.

Every test here runs the real default models. Two guards make "offline, no OpenAI"
checkable rather than assumed: outbound sockets are refused, and resolving LlamaIndex's
default LLM or embedding model (OpenAI, or a silent MockLLM fallback) fails the test.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import settings as li_settings

from furiosa_integrations.engine import AsyncEngine
from furiosa_integrations.llama_index import FuriosaEmbedding, FuriosaLLM


def _refuse_network(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise AssertionError(f"network access attempted: {address!r}")
    return _real_connect(self, address)


_real_connect = socket.socket.connect


def _no_defaults(resolve: Any) -> Any:
    def guarded(value: Any = "default", *args: Any, **kwargs: Any) -> Any:
        if value is None or value == "default":
            raise AssertionError("LlamaIndex fell back to its default (OpenAI) model")
        return resolve(value, *args, **kwargs)

    return guarded


@pytest.fixture(autouse=True, scope="module")
def offline_and_no_default_models() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OPENAI_API_KEY", raising=False)
        mp.setattr(socket.socket, "connect", _refuse_network)
        mp.setattr(li_settings, "resolve_llm", _no_defaults(li_settings.resolve_llm))
        embed_resolver = _no_defaults(li_settings.resolve_embed_model)
        mp.setattr(li_settings, "resolve_embed_model", embed_resolver)
        mp.setattr(li_settings.Settings, "_llm", None)
        mp.setattr(li_settings.Settings, "_embed_model", None)
        yield


@pytest.fixture(scope="session")
def llm(chat_engine: AsyncEngine) -> FuriosaLLM:
    """Greedy and short, so outputs are reproducible and tests stay fast."""
    return FuriosaLLM(temperature=0.0, max_tokens=48)


@pytest.fixture(scope="session")
def embed_model(embed_engine: AsyncEngine) -> FuriosaEmbedding:
    return FuriosaEmbedding()
