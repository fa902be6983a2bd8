"""The furiosa backend: furiosa-llm's native engine on RNGD, behind our native protocol.

Nothing here imports furiosa-llm until an engine is built, so this package imports on
any machine; building one without furiosa-llm raises ``BackendUnavailableError``.
"""

from .llm_loader import import_llm, llm_parameters, load_llm, native_engine_from_llm
from .native_engine import FuriosaNativeEngine
from .npu_probe import npu_available

__all__ = [
    "FuriosaNativeEngine",
    "import_llm",
    "llm_parameters",
    "load_llm",
    "native_engine_from_llm",
    "npu_available",
]
