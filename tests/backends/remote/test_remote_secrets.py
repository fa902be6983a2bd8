"""The API key stays secret: a ``SecretStr`` that no repr, dump, log line, error message,
LangSmith parameter or trace shows; shared engines are keyed by its digest; TLS is
verified by default. Against the victim server, which requires the key."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from pydantic import SecretStr

from furiosa_integrations import composition
from furiosa_integrations.backends.remote import RemoteConfig, redact_url
from furiosa_integrations.langchain import FuriosaChat, FuriosaEmbeddings
from furiosa_integrations.llama_index import FuriosaLLM

from .conftest import VICTIM_KEY
from .servers import FuriosaServer

pytestmark = pytest.mark.models


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.seen.append(repr(serialized) + repr(kwargs))

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.seen.append(repr(response) + repr(kwargs))


def test_the_key_is_never_shown(
    healthy_victim: FuriosaServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx's and ours, at their most talkative
    chat = FuriosaChat(
        base_url=healthy_victim.base_url,
        api_key=VICTIM_KEY,  # type: ignore[arg-type]  # a str: validated into a SecretStr
        temperature=0,
        max_tokens=4,
    )
    assert isinstance(chat.api_key, SecretStr)
    recorder = Recorder()
    message = chat.invoke("Hi", config={"callbacks": [recorder]})
    assert message.response_metadata["model_name"] == "victim"
    engine = chat._get_engine()
    shown = [
        repr(chat),
        str(chat),
        chat.model_dump_json(),
        repr(chat.model_dump()),
        repr(chat._get_ls_params()),
        repr(chat._identifying_params),
        repr(chat._get_invocation_params()),
        repr(engine.native),
        repr(engine.native.config),  # type: ignore[attr-defined]
        repr(list(composition._engines)),  # the sharing keys hold a digest
        caplog.text,
        *recorder.seen,
    ]
    assert recorder.seen
    for text in shown:
        assert VICTIM_KEY not in text


def test_keys_from_the_environment_and_other_adapters(
    healthy_victim: FuriosaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FURIOSA_BASE_URL", healthy_victim.base_url)
    monkeypatch.setenv("FURIOSA_API_KEY", VICTIM_KEY)
    chat = FuriosaChat(temperature=0, max_tokens=2)
    assert chat.base_url == healthy_victim.base_url
    assert chat.api_key is not None and chat.api_key.get_secret_value() == VICTIM_KEY
    assert chat.invoke("Hi").content is not None
    llm = FuriosaLLM(temperature=0.0, max_tokens=2)
    assert llm.complete("Hi").text is not None
    assert VICTIM_KEY not in repr(llm) + llm.model_dump_json()
    embeddings = FuriosaEmbeddings(api_key="sk-other-key")  # type: ignore[arg-type]
    assert "sk-other-key" not in repr(embeddings)


def test_tls_is_verified_and_urls_lose_their_credentials() -> None:
    config = RemoteConfig(
        "https://user:pw@fleet.example/v1", api_key="sk-x", headers={"X-Token": "t0ken"}
    )
    assert config.verify is True
    assert config.display_url == "https://fleet.example"
    assert "pw" not in repr(config) and "sk-x" not in repr(config)
    assert config.scrub("echo sk-x and t0ken") == "echo *** and ***"
    assert redact_url("http://a:b@h:1/p?key=1") == "http://h:1/p"
