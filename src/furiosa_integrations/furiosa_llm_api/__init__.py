"""furiosa-llm's (and vLLM's) engine API over the shared engine, on every backend.

``EngineArgs`` / ``AsyncEngineArgs`` (with their CLI), ``AsyncLLMEngine``, ``LLMEngine``
and the ``RequestOutput`` family, so code written against furiosa-llm runs unchanged.
"""

from .async_llm_engine import AsyncLLMEngine
from .engine_args import AsyncEngineArgs, EngineArgs
from .llm_engine import LLMEngine
from .request_output import (
    CompletionOutput,
    Logprob,
    PoolingOutput,
    PoolingRequestOutput,
    RequestOutput,
)

__all__ = [
    "AsyncEngineArgs",
    "AsyncLLMEngine",
    "CompletionOutput",
    "EngineArgs",
    "LLMEngine",
    "Logprob",
    "PoolingOutput",
    "PoolingRequestOutput",
    "RequestOutput",
]
