"""HTTP requests to the server, run on the client loop: streamed completions and JSON posts.

StreamHandle  one native request: its caller's sink, its task on the client loop,
              whether it was aborted; cancelling the task closes the HTTP stream,
              and the server aborts a request whose client disconnects
stream_completion   POST, retry while safe, SSE -> NativeStep -> the caller's sink
post_json           POST, retry while safe, the JSON answer
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from ...errors import MalformedResponseError, ServerDisconnectedError
from .client_loop import LoopSink
from .config import RemoteConfig
from .http_errors import (
    RETRY_STATUSES,
    error_for_status,
    error_from_event,
    error_from_transport,
    is_safe_to_retry,
    server_message,
)
from .retry import RetryPolicy
from .sse import EventStream
from .wire import StepDecoder

logger = logging.getLogger(__name__)

CLOSED = object()  # the last item a stream's sink receives: its task is over
_DONE_GRACE = 2.0  # seconds to wait for [DONE] after the last token (to reuse the connection)


class StreamHandle:
    """One streamed native request, shared by its caller's loop and the client loop."""

    def __init__(self, request_id: str, sink: LoopSink) -> None:
        self.request_id = request_id
        self.sink = sink
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False  # set on the client loop only
        self.aborted = False  # abort_request() asked for it: the stream ends as "abort"
        self.server_id: str | None = None

    def cancel_on_loop(self) -> None:
        """On the client loop: stop the request (closing its HTTP stream)."""
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()

    def on_done(self, task: asyncio.Task[Any]) -> None:
        """On the client loop: hand the task's error (if any), then CLOSED, to the caller."""
        if not task.cancelled() and task.exception() is not None:
            self.sink(task.exception())
        self.sink(CLOSED)


def _retry_after(response: httpx.Response) -> str | None:
    return response.headers.get("retry-after")


async def _wait(policy: RetryPolicy, attempt: int, why: str, retry_after: str | None) -> None:
    delay = policy.delay(attempt, retry_after)
    logger.info("Retrying in %.2fs (%d of %d): %s", delay, attempt + 1, policy.max_retries, why)
    await asyncio.sleep(delay)


async def stream_completion(
    client: httpx.AsyncClient,
    config: RemoteConfig,
    policy: RetryPolicy,
    body: dict[str, Any],
    decoder: StepDecoder,
    handle: StreamHandle,
) -> None:
    """Stream one completion into ``handle.sink`` (runs as a task on the client loop)."""
    route = "/v1/completions"
    where = config.display_url + route
    headers = {"X-Request-Id": handle.request_id}  # vLLM takes it as the request's id
    attempt = 0
    while True:
        try:
            async with client.stream(
                "POST", config.url(route), json=body, headers=headers
            ) as response:
                if response.status_code != 200:
                    message = server_message(await response.aread())
                    error = error_for_status(response.status_code, message, config, route)
                    if response.status_code in RETRY_STATUSES and attempt < policy.max_retries:
                        await _wait(policy, attempt, str(error), _retry_after(response))
                        attempt += 1
                        continue
                    raise error
                await _read_stream(response, decoder, handle, config, route, where)
                return
        except httpx.HTTPError as exc:
            if is_safe_to_retry(exc) and attempt < policy.max_retries:
                await _wait(policy, attempt, f"{type(exc).__name__} ({where})", None)
                attempt += 1
                continue
            raise error_from_transport(exc, config, route) from exc


async def _read_stream(
    response: httpx.Response,
    decoder: StepDecoder,
    handle: StreamHandle,
    config: RemoteConfig,
    route: str,
    where: str,
) -> None:
    events = EventStream(response.aiter_lines(), where)
    finished = False
    iterator = aiter(events)
    while True:
        try:
            if finished:  # only [DONE] is left: read it (to keep the connection), briefly
                payload = await asyncio.wait_for(anext(iterator), _DONE_GRACE)
            else:
                payload = await anext(iterator)
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            if finished:
                return
            raise
        if "error" in payload:
            raise error_from_event(payload, config, route)
        for step in decoder.feed(payload):
            handle.server_id = decoder.server_id
            if not handle.sink(step):
                return  # the caller's loop is gone: closing the stream aborts it
            finished = finished or step.finish_reason is not None
    if finished:
        return
    for step in decoder.finish():
        handle.sink(step)
        return
    if events.done:
        raise MalformedResponseError(f"{where} ended its stream without a finish reason")
    raise ServerDisconnectedError(f"{where} closed the stream before the completion finished")


async def post_json(
    client: httpx.AsyncClient,
    config: RemoteConfig,
    policy: RetryPolicy,
    route: str,
    body: dict[str, Any],
) -> Any:
    """POST ``body`` to ``route``; the JSON answer, or our error for what went wrong."""
    attempt = 0
    while True:
        try:
            response = await client.post(config.url(route), json=body)
        except httpx.HTTPError as exc:
            if is_safe_to_retry(exc) and attempt < policy.max_retries:
                await _wait(policy, attempt, f"{type(exc).__name__} ({route})", None)
                attempt += 1
                continue
            raise error_from_transport(exc, config, route) from exc
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise MalformedResponseError(
                    f"{config.display_url}{route} answered with something that is not JSON"
                ) from None
        error = error_for_status(
            response.status_code, server_message(response.content), config, route
        )
        if response.status_code in RETRY_STATUSES and attempt < policy.max_retries:
            await _wait(policy, attempt, str(error), _retry_after(response))
            attempt += 1
            continue
        raise error


__all__ = ["CLOSED", "StreamHandle", "post_json", "stream_completion"]
