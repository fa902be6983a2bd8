"""The langchain-tests standard suites for FuriosaChat, on the real default model."""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from furiosa_integrations.langchain import FuriosaChat

# Short, greedy generations keep the integration suite fast. 64 tokens still fit a whole
# joke object for the structured-output tests (decoding is constrained, so the JSON is
# valid once it is complete). Greedy decoding makes the 135M default model repeat itself
# ("a cat is a cat, a cat is a cat, ...") until max_tokens cuts a JSON string short; a
# mild repetition penalty, as commonly used with small models, lets it finish.
# The unit suite builds the model with its own max_tokens and stop on top of these
# params, so it gets none.
PARAMS = {"max_tokens": 64, "temperature": 0, "repetition_penalty": 1.1}


class TestFuriosaChatUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[FuriosaChat]:
        return FuriosaChat

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {}

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


class TestFuriosaChatIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[FuriosaChat]:
        return FuriosaChat

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return dict(PARAMS)

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
