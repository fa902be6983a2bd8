"""Where a served model lives and how to reach it: URL, credentials, timeouts, retries.

The API key is kept out of every repr, log line and error message; URLs in messages have
any user:password part removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ...errors import InvalidRequestError

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT = 600.0  # seconds, as the OpenAI client's; also the wait for each next token
CONNECT_TIMEOUT = 30.0  # at most this long to open a connection, whatever ``timeout`` is
_SECRET_WORDS = ("auth", "key", "token", "secret", "cookie", "password")  # header names


def _root_url(base_url: str) -> str:
    """The server's root (``/version``, ``/tokenize`` live there): ``base_url`` without a
    trailing ``/v1``, so both ``http://host:8000`` and ``http://host:8000/v1`` work."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise InvalidRequestError(f"base_url must be an http(s) URL, got {base_url!r}")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequestError(
            f"base_url must be an http:// or https:// URL, got {redact_url(base_url)!r}"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def redact_url(url: str) -> str:
    """``url`` without a user:password part or a query string (either may hold a secret)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class RemoteConfig:
    """How to talk to one OpenAI-compatible server (furiosa-llm serve, vLLM, a router)."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float | None = DEFAULT_TIMEOUT
    verify: bool | str = True  # TLS certificates are checked; a path names a CA bundle
    max_retries: int = 2  # only where safe: nothing was sent, or the server refused (429/503)
    max_connections: int = 256  # one per stream in flight
    root: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", _root_url(self.base_url))
        if self.timeout is not None and not (
            isinstance(self.timeout, (int, float)) and self.timeout > 0
        ):
            raise InvalidRequestError(
                f"timeout must be a number of seconds > 0 or None, got {self.timeout!r}"
            )
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise InvalidRequestError(
                f"max_retries must be an integer >= 0, got {self.max_retries!r}"
            )
        if not isinstance(self.max_connections, int) or self.max_connections < 1:
            raise InvalidRequestError(
                f"max_connections must be an integer >= 1, got {self.max_connections!r}"
            )
        headers = dict(self.headers or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise InvalidRequestError("headers must map strings to strings")
        object.__setattr__(self, "headers", headers)

    def __repr__(self) -> str:
        return (
            f"RemoteConfig({self.display_url!r}, timeout={self.timeout}, verify={self.verify}, "
            f"max_retries={self.max_retries}, api_key={'***' if self.api_key else None})"
        )

    @property
    def display_url(self) -> str:
        """The URL for messages and logs (no credentials)."""
        return redact_url(self.root)

    def scrub(self, text: str) -> str:
        """``text`` with the API key and credential headers masked (a server may echo them)."""
        for secret in (self.api_key, *self._secret_header_values()):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _secret_header_values(self) -> list[str]:
        return [v for k, v in self.headers.items() if any(w in k.lower() for w in _SECRET_WORDS)]

    def url(self, path: str) -> str:
        return self.root + path

    def request_headers(self) -> dict[str, str]:
        headers = {"User-Agent": "furiosa-integrations", **self.headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def httpx_timeout(self) -> httpx.Timeout:
        import httpx  # with the client, not with the package (see ``__init__``)

        if self.timeout is None:
            return httpx.Timeout(None, connect=CONNECT_TIMEOUT)
        return httpx.Timeout(self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT))

    def sharing_key(self) -> tuple[Any, ...]:
        """What tells two configurations apart, with secrets as digests, never in clear."""
        headers = tuple(sorted((k.lower(), _digest(v)) for k, v in self.headers.items()))
        key = _digest(self.api_key) if self.api_key else None
        return (
            self.root, key, headers, self.timeout, self.verify, self.max_retries,
            self.max_connections,
        )  # fmt: skip


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


__all__ = ["DEFAULT_TIMEOUT", "RemoteConfig", "redact_url"]
