"""Shared fixtures: the real default models, loaded once per test session.

Tests run the real torch engine on the bundled default models (or tiny random-weight
models they build). Engines come from ``get_engine`` so adapters built in tests share the
same instances. Tests that load a model carry the ``models`` marker (given here to every
test that uses a model fixture, and by hand to the others); the rest are the fast tier,
``pytest -m "not models"``, and are kept from loading weights by a guard.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Collected adapters free their engines at once here (one process runs hundreds of tests,
# each engine kept 300 s would pile up); tests/test_lifecycle.py covers the keep-alive.
os.environ.setdefault("FURIOSA_KEEP_ALIVE", "0")

from furiosa_integrations.engine import AsyncEngine, get_engine


@pytest.fixture(scope="session")
def chat_engine() -> AsyncEngine:
    return get_engine(task="generate")


@pytest.fixture(scope="session")
def embed_engine() -> AsyncEngine:
    return get_engine(task="embed")


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight BERT cross-encoder (no reranker ships with the package)."""
    from tests.backends.torch import tiny_cross_encoders

    return tiny_cross_encoders.build("bert", tmp_path_factory.mktemp("cross-encoder"))


MODEL_FIXTURES = frozenset({"chat_engine", "embed_engine", "cross_encoder_dir"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.models)


_guard = pytest.MonkeyPatch()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test without the ``models`` marker may neither read model weights (safetensors)
    nor use an engine another test loaded: the fast tier stays fast, and the marker true.
    Installed before the test's fixtures are set up, whatever their scope."""
    if item.get_closest_marker("models") is not None:
        return
    import safetensors.torch

    from furiosa_integrations import composition

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("This test loads model weights: mark it @pytest.mark.models")

    _guard.setattr(safetensors.torch, "load_file", refuse)
    _guard.setattr(composition, "_engines", {})  # none of the engines other tests loaded


def pytest_runtest_teardown(item: pytest.Item) -> None:
    _guard.undo()
