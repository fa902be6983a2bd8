"""The remote backend: a model served by ``furiosa-llm serve``, vLLM or another
OpenAI-compatible server (one ``base_url``, behind any load balancer or ``furiosa-llm
route``), behind our native protocol. httpx does the HTTP; nothing here imports an
inference runtime.
"""

from .capabilities import ServerKind
from .config import DEFAULT_TIMEOUT, RemoteConfig, redact_url
from .connect import REMOTE_OPTIONS, connect_remote, remote_config
from .native_engine import RemoteNativeEngine

__all__ = [
    "DEFAULT_TIMEOUT",
    "REMOTE_OPTIONS",
    "RemoteConfig",
    "RemoteNativeEngine",
    "ServerKind",
    "connect_remote",
    "redact_url",
    "remote_config",
]
