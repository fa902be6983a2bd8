"""The shared async engine (layer 2): backend-neutral text-level serving."""

from .async_engine import AsyncEngine
from .async_llm_engine import AsyncLLMEngine
from .engine_args import AsyncEngineArgs, EngineArgs
from .errors import (
    ContextLengthExceededError,
    DuplicateRequestIdError,
    EngineDeadError,
    EngineError,
    EngineOverloadedError,
    FuriosaError,
    InvalidRequestError,
    ModelNotFoundError,
    UnsupportedTaskError,
)
from .llm_engine import LLMEngine
from .outputs import Completion, GenerationChunk, GenerationResult, TokenLogprob, ToolCall, Usage
from .protocol import NativeEngine, NativeStats, NativeStep
from .registry import clear_engines, get_engine
from .request_outputs import (
    CompletionOutput,
    Logprob,
    PoolingOutput,
    PoolingRequestOutput,
    RequestOutput,
)
from .sampling import PoolingParams, RequestOutputKind, SamplingParams
from .structured import StructuredOutputsParams

__all__ = [
    "AsyncEngine",
    "AsyncEngineArgs",
    "AsyncLLMEngine",
    "Completion",
    "CompletionOutput",
    "ContextLengthExceededError",
    "DuplicateRequestIdError",
    "EngineArgs",
    "EngineDeadError",
    "EngineError",
    "EngineOverloadedError",
    "FuriosaError",
    "GenerationChunk",
    "GenerationResult",
    "InvalidRequestError",
    "LLMEngine",
    "Logprob",
    "ModelNotFoundError",
    "NativeEngine",
    "NativeStats",
    "NativeStep",
    "PoolingOutput",
    "PoolingParams",
    "PoolingRequestOutput",
    "RequestOutput",
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
