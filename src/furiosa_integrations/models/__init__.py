"""Model files: the bundled defaults, local directories and GGUF files, and their tokenizers."""

from .resolve import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    ResolvedModel,
    Task,
    infer_task,
    is_default_model,
    resolve_model,
)
from .tokenizer import FastTokenizer, load_tokenizer, load_transformers_tokenizer

__all__ = [
    "DEFAULT_CHAT_MODEL",
    "DEFAULT_EMBEDDING_MODEL",
    "FastTokenizer",
    "ResolvedModel",
    "Task",
    "infer_task",
    "is_default_model",
    "load_tokenizer",
    "load_transformers_tokenizer",
    "resolve_model",
]
