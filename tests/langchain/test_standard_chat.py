"""The langchain-tests standard suites for FuriosaChat, on the real default model."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from furiosa_integrations.langchain import FuriosaChat

pytestmark = pytest.mark.models  # every test here loads a model

# Greedy generations on the 135M default model. What each setting is for:
# - max_tokens: a cap well above what the answers need (a tool call with CJK arguments
#   takes ~80 tokens); most generations end on their own much earlier.
# - repetition_penalty: greedy decoding makes the tiny model repeat itself inside a
#   constrained JSON string ("sampu, sampu, sampu, ...") until max_tokens cuts the
#   object short; a mild penalty lets it close the object. (Much more than 1.08 starts
#   to push copied tool arguments away from the prompt's values.)
# - parallel_tool_calls=False: under a forced tool_choice the tiny model repeats the
#   same call again and again; one call per turn is what these tests expect.
# - force_tool_call_on_user_turn: the tiny model never chooses a tool on its own under
#   tool_choice="auto"; this FuriosaChat option requires a call while the conversation
#   ends with the user's message and lets the model answer after a tool result, so the
#   agent-loop test sees a real call and a real answer.
# The unit suite builds the model with its own max_tokens and stop on top of
# chat_model_params, so it gets none of these.
PARAMS = {
    "max_tokens": 128,
    "temperature": 0,
    "repetition_penalty": 1.08,
    "parallel_tool_calls": False,
    "force_tool_call_on_user_turn": True,
}


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
