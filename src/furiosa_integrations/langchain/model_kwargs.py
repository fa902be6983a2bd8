"""``model_kwargs``: LangChain's pass-through for options that are not fields.

As LangChain's own integrations do (``ChatOpenAI``), an argument that is no field moves to
``model_kwargs`` with LangChain's warning, and reaches the engine as
``SamplingParams.extra_args`` (which a served backend sends on to the server). An argument
that is a near miss of a field is a typo, though, and raises ``UnknownOptionError``
(``temprature`` -> "did you mean 'temperature'?"): dropping it would silently run with
the default.
"""

from __future__ import annotations

import difflib
from typing import Any

from langchain_core.utils.utils import _build_model_kwargs
from pydantic import BaseModel, Field

from ..adapter_fields import RefusesUnknownArguments
from ..errors import UnknownOptionError

_TYPO_CUTOFF = 0.8  # difflib ratio: "temprature" ~ "temperature" is 0.95


class ModelKwargs(RefusesUnknownArguments, BaseModel):
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Options for the engine that are not fields of this class (LangChain's convention);
    they reach the engine as ``SamplingParams.extra_args``."""

    @classmethod
    def _check_arguments(cls, data: dict[str, Any]) -> None:
        known = cls._known_arguments()
        typos = [
            name
            for name in data
            if name not in known and difflib.get_close_matches(name, known, 1, _TYPO_CUTOFF)
        ]
        if typos:
            raise UnknownOptionError(cls.__name__, typos, known)
        _build_model_kwargs(data, known)  # moves the rest to model_kwargs, with the warning

    def _extra_args(self) -> dict[str, Any]:
        return self.model_kwargs


__all__ = ["ModelKwargs"]
