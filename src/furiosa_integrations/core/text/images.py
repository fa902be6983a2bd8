"""Load images from chat content parts, for models that accept them (furiosa backend).

Accepted parts: OpenAI ``{"type": "image_url", "image_url": {"url": ...}}`` (or the
url as a string), the Responses API ``{"type": "input_image", "image_url": ...}``,
LangChain's standard blocks ``{"type": "image", "base64" | "url": ..., "mime_type": ...}``
and their v0 form ``{"type": "image", "source_type": "base64" | "url", "data" | "url": ...}``,
an Anthropic-style ``{"type": "image", "source": {"type": "base64", "data": ...}}`` and
``{"type": "image", "image": PIL.Image}``. Data URLs, base64 data and local paths are
read; http(s) URLs are refused, since nothing is fetched over the network at run time,
and so are file ids (they name a provider's file store).
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

from ...errors import InvalidRequestError


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:  # furiosa-llm depends on Pillow; plain installs may not
        raise InvalidRequestError("Image inputs need Pillow: pip install pillow") from exc
    return Image


def _from_bytes(data: bytes) -> Any:
    try:
        image = _pil().open(io.BytesIO(data))
        image.load()
    except Exception as exc:
        raise InvalidRequestError(f"Could not decode the image data: {exc}") from exc
    return image


def _from_base64(text: str) -> Any:
    try:
        return _from_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(f"Image data is not valid base64: {exc}") from exc


def _from_url(url: str) -> Any:
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise InvalidRequestError("Image data URLs must be base64-encoded")
        return _from_base64(payload)
    if url.startswith(("http://", "https://")):
        raise InvalidRequestError(
            "Image URLs are not fetched (no network access at run time); "
            "pass the image as base64 data or a local file path"
        )
    path = Path(url.removeprefix("file://")).expanduser()
    if not path.is_file():
        raise InvalidRequestError(f"Image file not found: {url}")
    return _from_bytes(path.read_bytes())


def load_image(part: dict[str, Any]) -> Any:
    """A PIL image for one image content part."""
    kind = part.get("type")
    if kind in ("image_url", "input_image"):
        ref = part.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        if not isinstance(url, str):
            raise InvalidRequestError(f"{kind} part has no url")
        return _from_url(url)
    if part.get("file_id") or part.get("source_type") == "id":
        raise InvalidRequestError(
            "Image file ids name a provider's file store; pass the image as base64 data, a "
            "data URL or a local file path"
        )
    source = part.get("source")
    if isinstance(source, dict) and isinstance(source.get("data"), str):
        return _from_base64(source["data"])
    image = part.get("image")
    if image is not None and not isinstance(image, (str, bytes)):
        return image  # already an image object (PIL)
    if isinstance(part.get("base64"), str):
        return _from_base64(part["base64"])
    if part.get("source_type") == "base64" and isinstance(part.get("data"), str):
        return _from_base64(part["data"])
    if isinstance(part.get("data"), bytes):
        return _from_bytes(part["data"])
    url = part.get("url") or (image if isinstance(image, str) else None)
    if isinstance(url, str):
        return _from_url(url)
    raise InvalidRequestError(f"Unsupported image content part: keys {sorted(part)}")
