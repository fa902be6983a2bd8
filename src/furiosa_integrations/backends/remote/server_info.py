"""What a server says about itself, asked once when connecting (synchronous httpx).

    /version          furiosa-llm ({"furiosa-llm": {...}}) or vLLM ({"version": "0.32.0"})
    /v1/models        the served names, each with max_model_len (and vLLM's model dir)
    /tokenizer_info   furiosa-llm's tokenizer settings, with the model's path
    /tokenize         the server's token ids for a probe text: must equal ours

``furiosa-llm route`` answers /version and /v1/models only; what it lacks is skipped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ...core import Tokenizer
from ...errors import FuriosaError, InvalidRequestError, TokenizerMismatchError
from .capabilities import ServerKind
from .config import RemoteConfig
from .http_errors import (
    RETRY_STATUSES,
    error_for_status,
    error_from_transport,
    is_safe_to_retry,
    server_message,
)
from .retry import RetryPolicy

logger = logging.getLogger(__name__)

# Spaces, punctuation, digits, accents, CJK and a newline: where tokenizers tend to differ.
PROBE_TEXT = "Hello, world! Ça va? 12345 東京タワー\n\tnaïve café, done."


@dataclass
class ServerInfo:
    kind: ServerKind
    version: str | None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # served name -> card

    def served_name(self, wanted: str | None, where: str) -> str:
        """The name to send as ``model``: ``wanted``, or the one model served."""
        names = sorted(self.models)
        if wanted is not None:
            if names and wanted not in self.models:
                raise InvalidRequestError(f"{where} does not serve {wanted!r}; it serves {names}")
            return wanted
        if len(names) == 1:
            return names[0]
        if not names:
            raise InvalidRequestError(f"{where} lists no models at /v1/models")
        raise InvalidRequestError(
            f"{where} serves several models {names}: pass served_model_name= to pick one"
        )

    def max_model_len(self, name: str) -> int | None:
        value = self.models.get(name, {}).get("max_model_len")
        return int(value) if isinstance(value, int) and value > 0 else None


class ServerProbe:
    """Synchronous requests for connecting (before any event loop is involved)."""

    def __init__(self, config: RemoteConfig) -> None:
        self.config = config
        self.policy = RetryPolicy(config.max_retries)
        self.client = httpx.Client(
            timeout=config.httpx_timeout(),
            verify=config.verify,
            headers=config.request_headers(),
            follow_redirects=False,
        )

    def __enter__(self) -> ServerProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, route: str, body: Any = None) -> httpx.Response:
        """The response (any status), retrying where safe; transport failures raise ours."""
        attempt = 0
        while True:
            try:
                response = self.client.request(method, self.config.url(route), json=body)
            except httpx.HTTPError as exc:
                if is_safe_to_retry(exc) and attempt < self.policy.max_retries:
                    time.sleep(self.policy.delay(attempt))
                    attempt += 1
                    continue
                raise error_from_transport(exc, self.config, route) from exc
            if response.status_code in RETRY_STATUSES and attempt < self.policy.max_retries:
                time.sleep(self.policy.delay(attempt, response.headers.get("retry-after")))
                attempt += 1
                continue
            return response

    def json(self, method: str, route: str, body: Any = None, *, optional: bool = False) -> Any:
        """The JSON answer; ``optional``: None when the route is missing or failing."""
        response = self.request(method, route, body)
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                if optional:
                    return None
                raise
        if optional and response.status_code in (404, 405, 500, 501):
            return None
        raise error_for_status(
            response.status_code, server_message(response.content), self.config, route
        )

    def info(self) -> ServerInfo:
        models = self.json("GET", "/v1/models")
        cards = models.get("data") if isinstance(models, dict) else None
        if not isinstance(cards, list):
            raise InvalidRequestError(
                f"{self.config.display_url}/v1/models is not an OpenAI model list"
            )
        by_name = {
            c["id"]: c for c in cards if isinstance(c, dict) and isinstance(c.get("id"), str)
        }
        version = self.json("GET", "/version", optional=True)
        kind: ServerKind = "openai-compatible"
        owners = {c.get("owned_by") for c in by_name.values()}
        if (isinstance(version, dict) and "furiosa-llm" in version) or "furiosa-ai" in owners:
            kind = "furiosa-llm"
        elif "vllm" in owners:
            kind = "vllm"
        else:
            logger.warning(
                "%s is neither furiosa-llm nor vLLM; options it may ignore are not checked",
                self.config.display_url,
            )
        number = version.get("version") if isinstance(version, dict) else None
        return ServerInfo(kind, str(number) if number is not None else None, by_name)

    def model_dir(self, info: ServerInfo, name: str) -> Path | None:
        """The served model's directory, when the server names one that exists here
        (vLLM's ``root`` in /v1/models, furiosa-llm's ``name_or_path`` in /tokenizer_info)."""
        candidates = [info.models.get(name, {}).get("root")]
        if info.kind == "furiosa-llm":
            tokenizer_info = self.json("GET", "/tokenizer_info", optional=True)
            if isinstance(tokenizer_info, dict):
                candidates.append(tokenizer_info.get("name_or_path"))
        for candidate in candidates:
            if isinstance(candidate, str) and candidate:
                path = Path(candidate).expanduser()
                if (path / "tokenizer.json").exists() or (path / "tokenizer_config.json").exists():
                    return path
        return None

    def check_tokenizer(self, tokenizer: Tokenizer, name: str) -> None:
        """The server's ids for ``PROBE_TEXT`` must equal ours (skipped where the server
        has no /tokenize, as behind ``furiosa-llm route``)."""
        body = {"model": name, "prompt": PROBE_TEXT, "add_special_tokens": False}
        try:
            answer = self.json("POST", "/tokenize", body, optional=True)
        except FuriosaError as exc:
            logger.warning("Could not check the tokenizer against the server's: %s", exc)
            return
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            logger.warning(
                "%s has no /tokenize: the local tokenizer (%s) is not checked against it",
                self.config.display_url,
                tokenizer.name_or_path,
            )
            return
        ours = list(tokenizer.encode(PROBE_TEXT, add_special_tokens=False))
        if ours != tokens:
            at = next(
                (i for i, (a, b) in enumerate(zip(ours, tokens, strict=False)) if a != b), None
            )
            at = min(len(ours), len(tokens)) if at is None else at
            raise TokenizerMismatchError(
                f"The local tokenizer ({tokenizer.name_or_path}) does not match the one "
                f"{self.config.display_url} serves {name!r} with: {PROBE_TEXT!r} is "
                f"{len(ours)} tokens here and {len(tokens)} there, differing from token {at} "
                f"(ours {ours[at : at + 3]}, the server's {tokens[at : at + 3]}). Pass model= "
                "the served model's own directory (its tokenizer files)."
            )


__all__ = ["PROBE_TEXT", "ServerInfo", "ServerProbe"]
