"""The langchain-tests standard suites for FuriosaEmbeddings, on the real default model."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from furiosa_integrations.langchain import FuriosaEmbeddings

pytestmark = pytest.mark.models  # every test here loads a model


class TestFuriosaEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[FuriosaEmbeddings]:
        return FuriosaEmbeddings


class TestFuriosaEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[FuriosaEmbeddings]:
        return FuriosaEmbeddings
