"""Native engines: the torch reference engine and furiosa-llm's NPU engine.

``create_native_engine`` picks one; nothing optional is imported until it is chosen.
"""

from .select import BackendName, create_native_engine, resolve_backend

__all__ = ["BackendName", "create_native_engine", "resolve_backend"]
