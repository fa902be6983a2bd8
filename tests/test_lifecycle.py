"""Per-instance lifecycle: ``close()`` / ``with`` lets go of an adapter's engine, and the
last adapter to let go frees it (both frameworks sharing one engine); an engine that
``get_engine`` handed out, or one passed in, stays up."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import pytest

from furiosa_integrations import composition
from furiosa_integrations.engine import AsyncEngine, get_engine
from furiosa_integrations.langchain import FuriosaChat, FuriosaRerank
from furiosa_integrations.llama_index import FuriosaRerank as LlamaRerank

pytestmark = pytest.mark.models


def _loaded(engine: AsyncEngine) -> bool:
    return engine.is_alive() and engine in composition._engines.values()


def test_last_adapter_to_let_go_frees_the_engine(cross_encoder_dir: Path) -> None:
    model = str(cross_encoder_dir)
    langchain = FuriosaRerank(model=model, validate_model_on_init=True)
    llama = LlamaRerank(model=model)  # loads at construction, as LlamaIndex's classes do
    engine = langchain.engine
    assert engine is not None and llama.engine is engine  # one shared engine
    langchain.close()
    assert langchain.engine is None and _loaded(engine)  # LlamaIndex still holds it
    with llama:
        assert _loaded(engine)
    assert not engine.is_alive() and not _loaded(engine)
    # A closed adapter loads again on its next call.
    assert langchain.rerank(["a", "b"], "query", top_n=1)[0]["index"] in (0, 1)
    assert langchain.engine is not None and langchain.engine is not engine
    langchain.close()


def test_garbage_collected_adapters_let_go(cross_encoder_dir: Path) -> None:
    engine = FuriosaRerank(model=str(cross_encoder_dir), validate_model_on_init=True).engine
    gc.collect()  # the adapter is gone, and with it its lease
    assert engine is not None and not engine.is_alive()


def test_a_collected_adapter_lets_go_without_waiting_for_the_lock(
    cross_encoder_dir: Path,
) -> None:
    """A collected adapter's finalizer may run on the compute thread in the middle of a
    model load that ``lease_engine`` waits for under the composition lock (a deadlock the
    clean-clone CI hit once): its release must not wait for that lock, and the engine is
    still freed once the lock is free."""
    adapter = FuriosaRerank(model=str(cross_encoder_dir), validate_model_on_init=True)
    engine = adapter.engine
    (lease,) = adapter._leases.values()
    with composition._lock:  # as a lease_engine loading a model holds it
        finalizer = threading.Thread(target=lease.release, kwargs={"collected": True})
        finalizer.start()
        finalizer.join(10)
        assert not finalizer.is_alive()  # returned without the lock
        assert engine is not None and engine.is_alive()
    deadline = time.monotonic() + 10
    while engine.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not engine.is_alive() and not _loaded(engine)


def test_collected_adapters_keep_their_engine_a_while(
    cross_encoder_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An adapter dropped without ``close()`` keeps its engine for ``KEEP_ALIVE_S``: the
    next adapter for the same model within it reuses the loaded engine; then it is freed."""
    monkeypatch.setattr(composition, "KEEP_ALIVE_S", 3.0)
    engine = FuriosaRerank(model=str(cross_encoder_dir), validate_model_on_init=True).engine
    gc.collect()
    assert engine is not None and _loaded(engine)
    for _ in range(5):  # an adapter per call: one engine, and one pending keep-alive timer
        again = FuriosaRerank(model=str(cross_encoder_dir), validate_model_on_init=True)
        assert again.engine is engine  # no second load
        del again
        gc.collect()
    assert len(composition._expiries) == 1
    deadline = time.monotonic() + 20
    while engine.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not engine.is_alive() and not _loaded(engine)


def test_engines_handed_out_or_passed_in_stay_up(
    chat_engine: AsyncEngine, cross_encoder_dir: Path
) -> None:
    with FuriosaChat() as chat:  # the shared default engine, which get_engine handed out
        chat.invoke("Hi", max_tokens=1)
    assert chat_engine.is_alive() and chat.engine is None
    pinned = get_engine(str(cross_encoder_dir), task="score")
    with FuriosaRerank(model=str(cross_encoder_dir), validate_model_on_init=True) as rerank:
        assert rerank.engine is pinned
    assert pinned.is_alive()
    with FuriosaRerank(engine=pinned) as given:  # the caller's engine is the caller's
        given.rerank(["a"], "query")
    assert pinned.is_alive() and given.engine is pinned
    pinned.shutdown()
