"""Where models come from: the bundled defaults, local directories and GGUF files."""

from .resolve import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    ResolvedModel,
    resolve_model,
)

__all__ = ["DEFAULT_CHAT_MODEL", "DEFAULT_EMBEDDING_MODEL", "ResolvedModel", "resolve_model"]
