"""LangChain's FuriosaChat / FuriosaLLM / FuriosaEmbeddings with ``base_url``: the
langchain-tests standard suites (every capability flag on, as in-process), every
``tool_choice``, structured output by all three methods and streamed usage, against
furiosa-llm's real server."""

from __future__ import annotations

from typing import Any, Final, Literal

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool
from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests
from pydantic import BaseModel, Field

from furiosa_integrations.engine import AsyncEngine
from furiosa_integrations.langchain import FuriosaChat, FuriosaEmbeddings, FuriosaLLM
from tests.engine_checks import wait_idle_sync
from tests.langchain.test_standard_chat import PARAMS, FuriosaChatSuite

from .servers import FuriosaServer

pytestmark = pytest.mark.models

_URLS: dict[str, str] = {}  # task -> the served base_url, set before each suite's tests


@pytest.fixture(autouse=True)
def _served_urls(furiosa_server: FuriosaServer, furiosa_embed_server: FuriosaServer) -> None:
    _URLS["generate"] = furiosa_server.base_url
    _URLS["embed"] = furiosa_embed_server.base_url


# ---- the standard suites ----


class TestRemoteChatUnit(FuriosaChatSuite, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"base_url": "http://127.0.0.1:9/v1"}  # never connected: unit tests build only

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        env = {"FURIOSA_BASE_URL": "http://fleet.example:8000/v1", "FURIOSA_API_KEY": "sk-env"}
        return env, {}, {"base_url": env["FURIOSA_BASE_URL"], "api_key": "sk-env"}


class TestRemoteChatIntegration(FuriosaChatSuite, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {**PARAMS, "base_url": _URLS["generate"]}


class TestRemoteEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[FuriosaEmbeddings]:
        return FuriosaEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"base_url": "http://127.0.0.1:9/v1"}


class TestRemoteEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[FuriosaEmbeddings]:
        return FuriosaEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"base_url": _URLS["embed"]}


# ---- tools, structured output, usage ----


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is foggy and 23 degrees in {city}."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="the person's first name")
    age: int = Field(description="the person's age in years")


ADA = "Return the name and age of the person: Ada, 36 years old."


@pytest.fixture
def chat(furiosa_server: FuriosaServer) -> FuriosaChat:
    return FuriosaChat(base_url=furiosa_server.base_url, temperature=0, max_tokens=48)


@pytest.fixture
def local_chat(chat_engine: AsyncEngine) -> FuriosaChat:
    return FuriosaChat(temperature=0, max_tokens=48)


@pytest.mark.parametrize(
    "tool_choice", ["auto", "none", "any", "required", "add", True, None], ids=str
)
def test_every_tool_choice_as_in_process(
    chat: FuriosaChat, local_chat: FuriosaChat, tool_choice: Any
) -> None:
    question = "What is 12 plus 30?"
    served = chat.bind_tools([get_weather, add], tool_choice=tool_choice).invoke(question)
    local = local_chat.bind_tools([get_weather, add], tool_choice=tool_choice).invoke(question)
    assert served.content == local.content
    assert [(c["name"], c["args"]) for c in served.tool_calls] == [
        (c["name"], c["args"]) for c in local.tool_calls
    ]
    if tool_choice in ("any", "required", "add", True):
        assert served.tool_calls and served.tool_calls[0]["name"] in ("add", "get_weather")
    if tool_choice == "none":
        assert served.tool_calls == []


def test_auto_tool_choice_needs_no_server_flags(furiosa_server: FuriosaServer) -> None:
    # The server runs without --enable-auto-tool-choice; "auto" is ours, so it works.
    chat = FuriosaChat(
        base_url=furiosa_server.base_url, temperature=0, max_tokens=48,
        force_tool_call_on_user_turn=True,
    )  # fmt: skip
    message = chat.bind_tools([get_weather], tool_choice="auto").invoke("Weather in Oslo?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_structured_output_every_method(
    chat: FuriosaChat, method: Literal["json_schema", "function_calling", "json_mode"]
) -> None:
    if method == "json_mode":
        value = chat.with_structured_output(None, method="json_mode").invoke(
            ADA + ' Reply in JSON with the keys "name" and "age".'
        )
        assert isinstance(value, dict)
        return
    assert chat.with_structured_output(Person, method=method).invoke(ADA) == Person(
        name="Ada", age=36
    )


def test_streaming_reports_usage(chat: FuriosaChat, local_chat: FuriosaChat) -> None:
    full: AIMessageChunk | None = None
    for chunk in chat.stream("Name a planet."):  # usage comes without asking
        full = chunk if full is None else full + chunk  # type: ignore[assignment]
    assert full is not None and full.usage_metadata is not None
    local = local_chat.invoke("Name a planet.")
    assert local.usage_metadata is not None
    assert full.content == local.content
    # Token counts agree; how much of the prompt each engine found cached
    # depends on what it served before (the server caches whole blocks), so
    # only the presence of the cache figure is compared.
    counts: Final = ("input_tokens", "output_tokens", "total_tokens")
    assert {k: full.usage_metadata[k] for k in counts} == {
        k: local.usage_metadata[k] for k in counts
    }
    remote_cached = full.usage_metadata.get("input_token_details", {}).get("cache_read")
    assert remote_cached is not None
    assert 0 <= remote_cached <= full.usage_metadata["input_tokens"]
    assert full.response_metadata["model_name"] == "stand-in"


def test_llm_and_embeddings_with_base_url(
    furiosa_server: FuriosaServer,
    furiosa_embed_server: FuriosaServer,
    chat_engine: AsyncEngine,
) -> None:
    llm = FuriosaLLM(base_url=furiosa_server.base_url, temperature=0, max_tokens=8)
    local = FuriosaLLM(temperature=0, max_tokens=8)
    assert llm.invoke("The capital of France is") == local.invoke("The capital of France is")
    embeddings = FuriosaEmbeddings(base_url=furiosa_embed_server.base_url)
    vectors = embeddings.embed_documents(["one", "two"])
    assert len(vectors) == 2 and len(vectors[0]) == 384
    wait_idle_sync(llm._get_engine())
