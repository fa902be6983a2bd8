"""Fixtures for the furiosa backend tests, run in .venv-furiosa (scripts/setup_furiosa_env.sh).

The engines here are our furiosa backend driving ``StandInNativeEngine`` (furiosa-llm's
native protocol over our torch engine), built the way it is built around a real
furiosa-llm ``LLM``: from the attributes ``LLM`` exposes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from furiosa_integrations.composition import engine_from_furiosa_llm
from furiosa_integrations.engine import AsyncEngine


@dataclass
class StandInModelMetadata:
    task: str
    model_type: str
    hf_configs: dict[str, Any] = field(default_factory=dict)


@dataclass
class StandInLLM:
    """What furiosa-llm's ``LLM`` exposes to our backend: ``engine`` (its native engine),
    ``tokenizer``, ``model_metadata``, ``model_id_or_path``, ``served_model_name``."""

    engine: Any
    tokenizer: Any
    model_metadata: StandInModelMetadata
    model_id_or_path: str
    served_model_name: str = "stand-in"
    shut_down: list[bool] = field(default_factory=list)

    def shutdown(self) -> None:
        self.shut_down.append(True)


def stand_in_llm(
    engine: AsyncEngine,
    model_type: str = "llama",
    *,
    tokenizer: Any = None,
    hf_configs: dict[str, Any] | None = None,
) -> StandInLLM:
    from .stand_in import StandInNativeEngine

    tokenizer = tokenizer if tokenizer is not None else engine.tokenizer
    return StandInLLM(
        engine=StandInNativeEngine(engine.native, getattr(tokenizer, "sep_token_id", None)),
        tokenizer=tokenizer,
        model_metadata=StandInModelMetadata(engine.task, model_type, hf_configs or {}),
        model_id_or_path=str(engine.tokenizer.name_or_path),
    )


@pytest.fixture(scope="session")
def furiosa_chat(chat_engine: AsyncEngine) -> AsyncEngine:
    return engine_from_furiosa_llm(stand_in_llm(chat_engine))


@pytest.fixture(scope="session")
def furiosa_embed(embed_engine: AsyncEngine) -> AsyncEngine:
    return engine_from_furiosa_llm(stand_in_llm(embed_engine))
