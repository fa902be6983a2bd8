"""The furiosa backend: furiosa-llm's native engine on RNGD, behind our native protocol.

Nothing here imports furiosa-llm until an engine is built, so this package imports on
any machine; building one without furiosa-llm raises ``BackendUnavailableError``.
"""

from .llm_builder import (
    create_furiosa_engine,
    furiosa_engine_from_args,
    furiosa_engine_from_llm,
    llm_kwargs,
    native_engine_from_llm,
)
from .native_engine import FuriosaNativeEngine

__all__ = [
    "FuriosaNativeEngine",
    "create_furiosa_engine",
    "furiosa_engine_from_args",
    "furiosa_engine_from_llm",
    "llm_kwargs",
    "native_engine_from_llm",
]
