"""The langchain-tests standard suites for FuriosaChat, on the real default model."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from furiosa_integrations.langchain import FuriosaChat

pytestmark = pytest.mark.models  # every test here loads a model

# Default settings but greedy decoding: nothing tuned. What used to need tuning (a
# repetition penalty against runaway JSON strings, one tool call per turn, a forced call on
# the user's turn) is what FuriosaChat does by default now.
PARAMS = {"temperature": 0}


class FuriosaChatSuite:
    """What both standard suites are told about FuriosaChat (not collected: no Test prefix)."""

    @property
    def chat_model_class(self) -> type[FuriosaChat]:
        return FuriosaChat

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True


class TestFuriosaChatUnit(FuriosaChatSuite, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {}


class TestFuriosaChatIntegration(FuriosaChatSuite, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return dict(PARAMS)
