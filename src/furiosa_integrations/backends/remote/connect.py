"""Connect to a served model: ask the server, find the tokenizer, check they agree.

base_url -> ServerProbe.info()        server kind, served names, max_model_len
         -> the served name           served_model_name=, or the one model served
         -> the tokenizer             model= (a local directory, .gguf or bundled
                                      default), else the directory the server names
                                      when it exists here, else a clear error
         -> check_tokenizer           /tokenize on a probe text equals ours
         -> RemoteNativeEngine
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...core import Task, Tokenizer
from ...errors import InvalidRequestError, ModelNotFoundError, UnknownOptionError
from ...models import load_tokenizer, resolve_model
from .config import DEFAULT_TIMEOUT, RemoteConfig
from .native_engine import RemoteNativeEngine
from .server_info import ServerInfo, ServerProbe

# get_engine(..., **options) on this backend: the connection's, and a cap on the context.
CONNECTION_OPTIONS = ("verify", "max_retries", "max_connections")
REMOTE_OPTIONS = (*CONNECTION_OPTIONS, "max_model_len")


def remote_config(
    base_url: str,
    *,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    **options: Any,
) -> RemoteConfig:
    """The connection's settings; an option this backend does not take is refused."""
    UnknownOptionError.check("the remote backend", options, CONNECTION_OPTIONS)
    return RemoteConfig(
        base_url, api_key=api_key, headers=dict(headers or {}), timeout=timeout, **options
    )


def connect_remote(
    config: RemoteConfig,
    *,
    task: Task,
    model: str | os.PathLike[str] | None = None,
    served_model_name: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_model_len: int | None = None,
) -> RemoteNativeEngine:
    """A native engine for the model served at ``config.base_url``; its ``tokenizer`` is set."""
    where = config.display_url
    with ServerProbe(config) as probe:
        info = probe.info()
        local = _local_model_dir(model, task, cache_dir)
        if local is None and model is not None and served_model_name is None:
            served_model_name = str(model)  # model= may name the served model (ChatOpenAI's way)
        name = info.served_name(served_model_name, where)
        directory = local or probe.model_dir(info, name)
        if directory is None:
            raise ModelNotFoundError(
                f"{where} serves {name!r}, but its tokenizer is not available here: the "
                "server does not name a model directory that exists on this machine. Pass "
                "model= a local directory with the served model's tokenizer and config "
                "(tokenizer.json, tokenizer_config.json, config.json), or a .gguf file."
            )
        tokenizer = load_tokenizer(directory)
        probe.check_tokenizer(tokenizer, name)
    return RemoteNativeEngine(
        config,
        task=task,
        served_model_name=name,
        max_model_len=_max_model_len(info, name, max_model_len, directory, where),
        tokenizer=tokenizer,
        eos_token_ids=eos_token_ids(directory, tokenizer),
        server_kind=info.kind,
        server_version=info.version,
    )


def _local_model_dir(
    model: str | os.PathLike[str] | None, task: Task, cache_dir: str | os.PathLike[str] | None
) -> Path | None:
    """The local directory ``model`` names, or None when it names none (then it may be
    the served name)."""
    if model is None:
        return None
    try:
        return resolve_model(model, task, cache_dir).path
    except ModelNotFoundError:
        if Path(model).expanduser().exists():
            raise  # a path that exists but is no model: say so, do not guess
        return None


def _max_model_len(
    info: ServerInfo, name: str, wanted: int | None, directory: Path, where: str
) -> int:
    """The server's limit (a smaller ``wanted`` caps it); else the model config's."""
    served = info.max_model_len(name)
    if wanted is not None and (not isinstance(wanted, int) or wanted < 1):
        raise InvalidRequestError(f"max_model_len must be an integer >= 1, got {wanted!r}")
    if served is not None:
        return min(served, wanted) if wanted else served
    if wanted:
        return wanted
    config = _read_json(directory / "config.json")
    value = config.get("max_position_embeddings")
    if isinstance(value, int) and value > 0:
        return value
    raise InvalidRequestError(
        f"{where} does not report max_model_len for {name!r}; pass max_model_len="
    )


def eos_token_ids(directory: Path, tokenizer: Tokenizer) -> frozenset[int]:
    """The model's EOS ids (generation config and model config, as the torch engine reads
    them), or the tokenizer's EOS token when neither lists one."""
    ids: set[int] = set()
    for name in ("config.json", "generation_config.json"):
        value = _read_json(directory / name).get("eos_token_id")
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(v for v in value if isinstance(v, int))
    if not ids:
        eos = getattr(tokenizer, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
    return frozenset(ids)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


__all__ = [
    "CONNECTION_OPTIONS",
    "REMOTE_OPTIONS",
    "connect_remote",
    "eos_token_ids",
    "remote_config",
]
