"""Faults a test arms on the served stand-in (``POST /_stand_in/fault``), one request each.

An ASGI wrapper around furiosa-llm's app: the next ``count`` requests to ``path`` get

- ``{"kind": "status", "status": 500}``: that HTTP status and an OpenAI-style error body,
  before the server sees the request (``retry_after`` adds a ``Retry-After`` header);
- ``{"kind": "malformed", "after_events": k}``: the real stream, with its event after the
  first ``k`` replaced by a line that is not JSON, and the response ended there;
- ``{"kind": "stall", "after_events": k, "seconds": s}``: the real stream, held for ``s``
  seconds after ``k`` events (a client read timeout fires; the server sees it disconnect);
- ``{"kind": "drop", "after_events": k}``: the connection cut after ``k`` events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class FaultInjector:
    def __init__(self) -> None:
        self._armed: list[dict[str, Any]] = []

    def arm(self, fault: dict[str, Any]) -> None:
        fault = {"path": "/v1/completions", "count": 1, "after_events": 1, **fault}
        self._armed.append(fault)

    def clear(self) -> None:
        self._armed.clear()

    def _take(self, path: str) -> dict[str, Any] | None:
        for fault in self._armed:
            if fault["path"] == path:
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self._armed.remove(fault)
                return fault
        return None

    def wrap(self, app: App) -> App:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            fault = self._take(scope["path"]) if scope["type"] == "http" else None
            if fault is None:
                await app(scope, receive, send)
            elif fault["kind"] == "status":
                await _status(fault, send)
            else:
                await app(scope, receive, _faulty_send(fault, send))

        return wrapped


async def _status(fault: dict[str, Any], send: Send) -> None:
    status = int(fault["status"])
    body = json.dumps(
        {
            "object": "error",
            "message": fault.get("message", f"injected fault: HTTP {status}"),
            "type": "InternalServerError" if status >= 500 else "BadRequestError",
            "param": None,
            "code": status,
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if "retry_after" in fault:
        headers.append((b"retry-after", str(fault["retry_after"]).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _faulty_send(fault: dict[str, Any], send: Send) -> Send:
    events = 0
    ended = False

    async def faulty(message: Message) -> None:
        nonlocal events, ended
        if ended:
            return  # the app keeps streaming into a response we already ended
        if message["type"] != "http.response.body" or not message.get("body"):
            await send(message)
            return
        if events == fault["after_events"]:
            kind = fault["kind"]
            if kind == "malformed":
                ended = True
                body = b'data: {"id": "cmpl-broken", "choices": [{"index": 0, "tok\n\n'
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            if kind == "stall":
                await asyncio.sleep(float(fault.get("seconds", 30)))
            elif kind == "drop":
                raise ConnectionAbortedError("injected fault: connection dropped")
        events += 1
        await send(message)

    return faulty
