"""What ``LLMEngine`` and ``AsyncLLMEngine`` share, as furiosa-llm's ``LLMEngineBase`` does.

Both wrap one shared ``AsyncEngine``: they are built the same three ways, report the same
model facts, and shut the engine down only when they built it themselves.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .. import composition
from ..core import AsyncEngine, Tokenizer
from .engine_args import EngineArgs
from .engine_from_args import engine_from_args

_Wrapper = TypeVar("_Wrapper", bound="LLMEngineBase")


class LLMEngineBase:
    """An ``AsyncEngine`` wrapped in one of furiosa-llm's (vLLM's) engine APIs.

    ``seed`` makes sampling repeatable across requests that have no seed of their own;
    ``owns_engine`` says whether ``shutdown`` shuts the wrapped engine down too.
    """

    def __init__(self, engine: AsyncEngine, *, seed: int | None = None, owns_engine: bool = False):
        self.engine = engine
        self.seed = seed
        self._owns_engine = owns_engine

    # ---- construction ----

    @classmethod
    def from_engine_args(cls: type[_Wrapper], args: EngineArgs) -> _Wrapper:
        """Build the engine ``args`` describe (``AsyncEngineArgs`` too), on any backend."""
        engine, owned = engine_from_args(args)
        return cls(engine, seed=args.seed, owns_engine=owned)

    @classmethod
    def from_engine(cls: type[_Wrapper], engine: AsyncEngine) -> _Wrapper:
        """Wrap an existing engine (shared, so ``shutdown`` leaves it running)."""
        return cls(engine)

    @classmethod
    def from_llm(cls: type[_Wrapper], llm: Any) -> _Wrapper:
        """Wrap a furiosa-llm ``LLM`` (its native engine, tokenizer and limits)."""
        return cls(composition.engine_from_furiosa_llm(llm))

    # ---- model facts ----

    @property
    def max_model_len(self) -> int:
        return self.engine.max_model_len

    @property
    def tokenizer(self) -> Tokenizer:
        return self.engine.tokenizer

    # ---- lifetime ----

    def shutdown(self) -> None:
        """Shut the engine down if this wrapper built it (``from_engine_args`` on furiosa)."""
        if self._owns_engine:
            self.engine.shutdown()

    def __enter__(self: _Wrapper) -> _Wrapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


__all__ = ["LLMEngineBase"]
