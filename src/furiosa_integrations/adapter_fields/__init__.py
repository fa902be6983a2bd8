"""Fields both frameworks' adapters declare, defined once: engine choice and request options.

LangChain's ``FuriosaChat`` / ``FuriosaLLM`` / ``FuriosaEmbeddings`` and LlamaIndex's
``FuriosaLLM`` / ``FuriosaEmbedding`` inherit these pydantic mixins, so each field has one
name, one description and one mapping onto the engine in both frameworks:

    RefusesUnknownArguments   a misspelt argument is an UnknownOptionError, not ignored
    EngineChoice     model, backend, device, dtype, engine  ->  composition.lease_engine
                     (+ base_url, api_key, headers, timeout, served_model_name: a server);
                     close() / ``with`` lets go of the engine
    SamplingOptions  sampling fields (+ per-call overrides) ->  SamplingParams, and the
                     arguments of a completion request      ->  engine.stream(prompt, ...)
    ChatOptions      SamplingOptions + template and tool options -> engine.stream(messages=...)
"""

from .engine_choice import EngineChoice
from .request_options import (
    CALL_OPTIONS,
    CHAT_OPTIONS,
    SAMPLING_OPTIONS,
    ChatOptions,
    SamplingOptions,
)
from .unknown_arguments import RefusesUnknownArguments

__all__ = [
    "CALL_OPTIONS",
    "CHAT_OPTIONS",
    "SAMPLING_OPTIONS",
    "ChatOptions",
    "EngineChoice",
    "RefusesUnknownArguments",
    "SamplingOptions",
]
