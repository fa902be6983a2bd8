"""The shared async engine: backend-neutral, text level, one per model per process."""

from .async_engine import AsyncEngine
from .outputs import (
    Completion,
    CompletionSums,
    GenerationChunk,
    GenerationResult,
    TokenLogprob,
    ToolCall,
    Usage,
)
from .protocol import (
    NativeEngine,
    NativeEngineBase,
    NativeLogprob,
    NativeStats,
    NativeStep,
    ScorePair,
    Task,
)
from .sampling_params import PoolingParams, RequestOutputKind, SamplingParams
from .scoring import ranked
from .structured_outputs import StructuredOutputsParams
from .tokenizer import Tokenizer

__all__ = [
    "AsyncEngine",
    "Completion",
    "CompletionSums",
    "GenerationChunk",
    "GenerationResult",
    "NativeEngine",
    "NativeEngineBase",
    "NativeLogprob",
    "NativeStats",
    "NativeStep",
    "PoolingParams",
    "RequestOutputKind",
    "SamplingParams",
    "ScorePair",
    "StructuredOutputsParams",
    "Task",
    "TokenLogprob",
    "Tokenizer",
    "ToolCall",
    "Usage",
    "ranked",
]
