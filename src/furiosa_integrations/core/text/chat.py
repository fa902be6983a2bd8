"""Render chat messages into a prompt with the model's chat template.

Messages are OpenAI-style dicts (``role``, ``content``, optional ``name``, ``tool_calls``,
``tool_call_id``). Content given as a list of parts is joined; image parts are refused
on a text-only model. Templates that demand alternating roles get consecutive messages
of one role merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import InvalidRequestError, UnsupportedInputError
from ..tokenizer import Tokenizer

ROLES = ("system", "developer", "user", "assistant", "tool")
_IMAGE_PART_TYPES = ("image", "image_url", "input_image")


def content_text(content: Any, *, allow_images: bool = False) -> str:
    """Flatten message content to text; refuse images unless the model accepts them."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                kind = part.get("type")
                if kind in _IMAGE_PART_TYPES:
                    if not allow_images:
                        raise UnsupportedInputError(
                            "This model is text-only: image content is not supported"
                        )
                    continue
                if kind in ("text", "input_text") or "text" in part:
                    texts.append(str(part.get("text", "")))
                else:
                    raise InvalidRequestError(f"Unsupported message content part type {kind!r}")
            else:
                raise InvalidRequestError(
                    f"Message content parts must be str or dict, got {type(part).__name__}"
                )
        return "".join(texts)
    raise InvalidRequestError(f"Message content must be text, got {type(content).__name__}")


def _content_with_images(content: Any) -> Any:
    """Text, or (when it holds images) the part list a vision model's template expects."""
    if not isinstance(content, list) or not any(
        isinstance(p, dict) and p.get("type") in _IMAGE_PART_TYPES for p in content
    ):
        return content_text(content)
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, dict) and part.get("type") in _IMAGE_PART_TYPES:
            parts.append({"type": "image"})
        else:
            parts.append({"type": "text", "text": content_text([part])})
    return parts


def image_parts(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """The image content parts of ``messages``, in order."""
    found: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            found.extend(
                p for p in content if isinstance(p, dict) and p.get("type") in _IMAGE_PART_TYPES
            )
    return found


def normalize_messages(
    messages: Sequence[Any], *, allow_images: bool = False
) -> list[dict[str, Any]]:
    """Check and copy messages into the plain dicts templates expect.

    Image parts are refused unless ``allow_images``; then a message holding images keeps
    its content as ``[{"type": "image"}, {"type": "text", ...}]`` for the chat template.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)) or not messages:
        raise InvalidRequestError("messages must be a non-empty list of message dicts")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequestError(f"messages[{i}] must be a dict, got {type(message).__name__}")
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequestError(f"messages[{i}].role must be one of {ROLES}, got {role!r}")
        copy = dict(message)
        content = message.get("content")
        copy["content"] = _content_with_images(content) if allow_images else content_text(content)
        if role == "developer":
            copy["role"] = "system"
        out.append(copy)
    if not any(m["content"] or m.get("tool_calls") for m in out):
        # Nothing for the model to answer: the chat form of an empty prompt.
        raise InvalidRequestError("messages hold no content: every message is empty")
    return out


def merge_consecutive(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join consecutive plain messages of one role (for templates that demand alternation)."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        plain = set(message) <= {"role", "content", "name"} and isinstance(message["content"], str)
        if (
            merged
            and plain
            and set(merged[-1]) <= {"role", "content", "name"}
            and isinstance(merged[-1]["content"], str)
            and merged[-1]["role"] == message["role"]
            and message["role"] in ("system", "user", "assistant")
        ):
            merged[-1] = {
                **merged[-1],
                "content": merged[-1]["content"] + "\n\n" + message["content"],
            }
        else:
            merged.append(dict(message))
    return merged


def apply_template(
    tokenizer: Tokenizer,
    messages: list[dict[str, Any]],
    *,
    add_generation_prompt: bool = True,
    tools: list[dict[str, Any]] | None = None,
    **template_kwargs: Any,
) -> str:
    """Render with the tokenizer's chat template, merging roles if the template insists."""
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidRequestError("This model has no chat template; pass a plain prompt instead")
    kwargs: dict[str, Any] = dict(template_kwargs)
    if tools:
        kwargs["tools"] = tools
    try:
        return str(
            tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs
            )
        )
    except Exception as exc:  # jinja2 TemplateError from raise_exception(...) in templates
        merged = merge_consecutive(messages)
        if merged == messages:
            raise InvalidRequestError(f"The chat template rejected the messages: {exc}") from exc
        return str(
            tokenizer.apply_chat_template(
                merged, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs
            )
        )
