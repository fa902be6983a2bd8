"""The engine's public names in one import: ``from furiosa_integrations.engine import ...``.

Nothing is defined here. The shared engine lives in ``core/`` (``AsyncEngine``, request
options, outputs, the native protocol), engines are built and shared by ``composition``
(``get_engine``, ``clear_engines``), furiosa-llm's / vLLM's engine API lives in
``furiosa_llm_api/`` and the errors in ``errors``.
"""

from .composition import clear_engines, get_engine
from .core import (
    AsyncEngine,
    Completion,
    GenerationChunk,
    GenerationResult,
    NativeEngine,
    NativeEngineBase,
    NativeStats,
    NativeStep,
    PoolingParams,
    RequestOutputKind,
    SamplingParams,
    ScorePair,
    StructuredOutputsParams,
    Tokenizer,
    TokenLogprob,
    ToolCall,
    Usage,
)
from .errors import (
    ContextLengthExceededError,
    DuplicateRequestIdError,
    EngineDeadError,
    EngineError,
    EngineOverloadedError,
    FuriosaError,
    InvalidRequestError,
    ModelNotFoundError,
    UnknownOptionError,
    UnsupportedInputError,
    UnsupportedTaskError,
)
from .furiosa_llm_api import (
    AsyncEngineArgs,
    AsyncLLMEngine,
    CompletionOutput,
    EngineArgs,
    LLMEngine,
    Logprob,
    PoolingOutput,
    PoolingRequestOutput,
    RequestOutput,
)

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
    "NativeEngineBase",
    "NativeStats",
    "NativeStep",
    "PoolingOutput",
    "PoolingParams",
    "PoolingRequestOutput",
    "RequestOutput",
    "RequestOutputKind",
    "SamplingParams",
    "ScorePair",
    "StructuredOutputsParams",
    "TokenLogprob",
    "Tokenizer",
    "ToolCall",
    "UnknownOptionError",
    "UnsupportedInputError",
    "UnsupportedTaskError",
    "Usage",
    "clear_engines",
    "get_engine",
]
