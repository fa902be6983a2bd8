"""Convert a GGUF file once into a safetensors model directory in a cache.

transformers dequantizes GGUF on every load (~30 s for the default model, ~1 min
for Gemma 3 270M); the converted directory reloads in about a second. Any architecture
transformers' GGUF loader knows converts (Llama, Mistral, Qwen2/3, Phi-3, Gemma 2/3,
GPT-2, ...); the torch engine then runs it natively or through its fallback. Two
processes racing to convert are serialised by a file lock, and the directory only
appears once complete. A conversion also removes those no lookup can reach any more
(``prune_unreachable``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

logger = logging.getLogger(__name__)

_DONE_MARKER = ".furiosa-converted"


def default_cache_dir() -> Path:
    """``$FURIOSA_INTEGRATIONS_CACHE``, else ``$XDG_CACHE_HOME/furiosa-integrations``."""
    env = os.environ.get("FURIOSA_INTEGRATIONS_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "furiosa-integrations"


def _cache_key(gguf_path: Path) -> str:
    stat = gguf_path.stat()
    digest = hashlib.sha256(f"{gguf_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{gguf_path.stem}-{digest.hexdigest()[:12]}"


def converted_dir(
    gguf_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Return a safetensors directory for ``gguf_path``, converting it on first use."""
    gguf = Path(gguf_path)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / "gguf" / _cache_key(gguf)
    if (target / _DONE_MARKER).exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    (root / "gguf").mkdir(exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / _DONE_MARKER).exists():  # another process finished while we waited
            return target
        logger.warning(
            "Converting %s once into %s (a minute or so; progress below)", gguf.name, target
        )
        tmp = Path(tempfile.mkdtemp(dir=root / "gguf", prefix=".tmp-"))
        try:
            _convert(gguf, tmp)
            (tmp / _DONE_MARKER).write_text(str(gguf.resolve()))
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    prune_unreachable(root)
    return target


def prune_unreachable(cache_dir: Path) -> list[Path]:
    """Remove the converted directories no lookup can reach any more: the GGUF file each
    was made from (its marker names it) is gone or has changed since, and a key holds the
    file's path, size and modification time. A reinstalled or upgraded model package, or a
    deleted virtual environment, would otherwise leave its conversion (~0.5 GB for the
    default model) behind for good. Called after each conversion; returns what it removed."""
    removed = []
    for entry in sorted((cache_dir / "gguf").glob("*")):
        marker = entry / _DONE_MARKER
        if entry.name.startswith(".") or not marker.is_file():  # in progress, or not ours
            continue
        source = Path(marker.read_text().strip())
        try:
            reachable = _cache_key(source) == entry.name
        except OSError:  # the GGUF file is gone
            reachable = False
        if not reachable:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        logger.warning(
            "Removed %d converted model(s) whose GGUF file is gone or changed: %s",
            len(removed),
            ", ".join(entry.name for entry in removed),
        )
    return removed


def _convert(gguf: Path, out_dir: Path) -> None:
    # transformers shows its own tqdm progress bar while dequantizing.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype="float32"
    )
    # The dequantized weights are plain tensors; drop the GGUF marker so it can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
