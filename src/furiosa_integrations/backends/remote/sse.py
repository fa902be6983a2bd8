"""Server-sent events of an OpenAI-compatible stream, as JSON payloads.

Each event is ``data: <json>`` and a blank line; ``data: [DONE]`` ends the stream; a
``data: {"error": ...}`` event is the server failing after it answered 200. Comment lines
(``:``) and the other SSE fields (``event:``, ``id:``, ``retry:``) are allowed and ignored;
anything else, or data that is not a JSON object, is a ``MalformedResponseError``: a
stream we cannot read must not pass for a short answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from ...errors import MalformedResponseError

_OTHER_FIELDS = ("event", "id", "retry")
_MAX_QUOTED = 200  # characters of a bad line quoted in the error


class EventStream:
    """Reads ``lines`` into JSON payloads; ``done`` tells whether ``[DONE]`` arrived."""

    def __init__(self, lines: AsyncIterable[str], where: str) -> None:
        self._lines = lines
        self.where = where
        self.done = False

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        data: list[str] = []
        async for raw in self._lines:
            line = raw.rstrip("\r\n")
            if not line:  # end of an event
                if data:
                    payload = self._payload("\n".join(data))
                    data.clear()
                    if payload is None:
                        self.done = True
                        return
                    yield payload
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name not in _OTHER_FIELDS:
                raise self._malformed("a line that is not a server-sent event", line)
        if data:  # the last event had no blank line after it
            payload = self._payload("\n".join(data))
            if payload is None:
                self.done = True
                return
            yield payload

    def _payload(self, text: str) -> dict[str, Any] | None:
        """The event's JSON object, or None for ``[DONE]``."""
        if text.strip() == "[DONE]":
            return None
        try:
            payload = json.loads(text)
        except ValueError:
            raise self._malformed("an event that is not JSON", text) from None
        if not isinstance(payload, dict):
            raise self._malformed("an event that is not a JSON object", text)
        return payload

    def _malformed(self, what: str, text: str) -> MalformedResponseError:
        quoted = text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "..."
        return MalformedResponseError(f"{self.where} sent {what}: {quoted!r}")


__all__ = ["EventStream"]
