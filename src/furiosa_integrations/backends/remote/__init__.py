"""The remote backend: a model served by ``furiosa-llm serve``, vLLM or another
OpenAI-compatible server (one ``base_url``, behind any load balancer or ``furiosa-llm
route``), behind our native protocol. httpx does the HTTP; nothing here imports an
inference runtime.

The package holds only the configuration. The client side (``connect``: httpx and the
native engine over it) is imported when a served model is first used, as the other
backends' runtimes are: importing the adapters does not pay for httpx (~45 ms).
"""

from .capabilities import ServerKind
from .config import DEFAULT_TIMEOUT, RemoteConfig, redact_url

__all__ = ["DEFAULT_TIMEOUT", "RemoteConfig", "ServerKind", "redact_url"]
