"""Request lifecycle: ids in flight and their places under backpressure.

Generation and pooling requests alike go through ``RequestTracker.claimed``: it claims the
request id, waits for (or is refused) a place, and gives both back on every exit path
(end, error, break, ``aclose``, cancellation), before the call that ended it returns.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ..errors import DuplicateRequestIdError, InvalidRequestError
from .admission import Admission


class RequestTracker:
    """The request ids in flight, with the native ids each one runs as (``n > 1``)."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self._native_ids: dict[str, list[str]] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._native_ids)

    def new_id(self) -> str:
        return f"req-{uuid.uuid4().hex[:12]}-{next(self._counter)}"

    def check_new(self, request_id: str | None) -> str:
        """The id a new request will run under (a fresh one for ``None``); refuses a bad
        or in-flight id before anything is queued."""
        if request_id is None:
            return self.new_id()
        if not isinstance(request_id, str) or not request_id:
            raise InvalidRequestError("request_id must be a non-empty string")
        self._refuse_in_flight(request_id)
        return request_id

    def _refuse_in_flight(self, request_id: str) -> None:
        if request_id in self._native_ids:
            raise DuplicateRequestIdError(f"Request id {request_id!r} is already in flight")

    def native_ids(self, request_id: str) -> list[str]:
        """The native requests ``request_id`` runs as (itself when it is not in flight)."""
        return self._native_ids.get(request_id, [request_id])

    @asynccontextmanager
    async def claimed(
        self, request_id: str, native_ids: Sequence[str] | None = None
    ) -> AsyncIterator[None]:
        """Hold ``request_id`` (and an admission place) for the duration of the block."""
        self._refuse_in_flight(request_id)  # again: it may have been taken since the check
        self._native_ids[request_id] = list(native_ids or [request_id])
        try:
            await self.admission.acquire()
        except BaseException:
            del self._native_ids[request_id]
            raise
        try:
            yield
        finally:
            self.admission.release()
            self._native_ids.pop(request_id, None)


__all__ = ["RequestTracker"]
