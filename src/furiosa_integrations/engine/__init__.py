"""The shared async engine (layer 2): backend-neutral text-level serving."""

from .async_engine import AsyncEngine
from .errors import (
    ContextLengthExceededError,
    DuplicateRequestIdError,
    EngineDeadError,
    EngineError,
    FuriosaError,
    InvalidRequestError,
    ModelNotFoundError,
    UnsupportedTaskError,
)
from .outputs import Completion, GenerationChunk, GenerationResult, TokenLogprob, ToolCall, Usage
from .protocol import NativeEngine, NativeStats, NativeStep
from .registry import clear_engines, get_engine
from .sampling import PoolingParams, RequestOutputKind, SamplingParams
from .structured import StructuredOutputsParams

__all__ = [
    "AsyncEngine",
    "Completion",
    "ContextLengthExceededError",
    "DuplicateRequestIdError",
    "EngineDeadError",
    "EngineError",
    "FuriosaError",
    "GenerationChunk",
    "GenerationResult",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NativeEngine",
    "NativeStats",
    "NativeStep",
    "PoolingParams",
    "RequestOutputKind",
    "SamplingParams",
    "StructuredOutputsParams",
    "TokenLogprob",
    "ToolCall",
    "UnsupportedTaskError",
    "Usage",
    "clear_engines",
    "get_engine",
]
