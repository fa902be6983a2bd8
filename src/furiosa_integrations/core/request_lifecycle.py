"""Request lifecycle: ids in flight and their places under backpressure.

Generation and pooling requests alike hold a ``Claim`` while they run: it takes the
request id, then waits for (or is refused) a place, and ``release`` gives both back on
every exit path (end, error, break, ``aclose``, cancellation), synchronously, so the id
is free again before the call that ended the request returns.
"""

from __future__ import annotations

import gc
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import DuplicateRequestIdError, InvalidRequestError
from .admission import Admission


@dataclass(eq=False)  # one claim per request run; compared by identity
class Claim:
    """A request id (and the native ids it runs as) held by one run of a request."""

    request_id: str
    native_ids: list[str] = field(default_factory=list)
    held: bool = False  # the id is taken
    admitted: bool = False  # a place under backpressure is taken
    released: bool = False


class RequestTracker:
    """The request ids in flight, with the native ids each one runs as (``n > 1``)."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self._claims: dict[str, Claim] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._claims)

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
        if request_id in self._claims:
            # A stream abandoned inside a reference cycle (LlamaIndex's stream wrappers keep
            # the exception that closed them, and so their frame) lets go of its id only
            # when the cycle is collected: collect once before calling the id taken.
            gc.collect()
        if request_id in self._claims:
            raise DuplicateRequestIdError(f"Request id {request_id!r} is already in flight")

    def native_ids(self, request_id: str) -> list[str]:
        """The native requests ``request_id`` runs as (itself when it is not in flight)."""
        claim = self._claims.get(request_id)
        return list(claim.native_ids) if claim is not None else [request_id]

    def hold(self, request_id: str, native_ids: Sequence[str] | None = None) -> Claim:
        """Take ``request_id`` now (it may have been taken since ``check_new``)."""
        self._refuse_in_flight(request_id)
        claim = Claim(request_id, list(native_ids or [request_id]), held=True)
        self._claims[request_id] = claim
        return claim

    async def admit(self, claim: Claim) -> None:
        """Wait for a place under backpressure (or be refused one)."""
        await self.admission.acquire()
        if claim.released:  # released while waiting: hand the place straight back
            self.admission.release()
            return
        claim.admitted = True

    def release(self, claim: Claim) -> bool:
        """Give the id and the place back (once; later calls do nothing). Returns whether
        this call released it."""
        if claim.released:
            return False
        claim.released = True
        if claim.admitted:
            self.admission.release()
        if self._claims.get(claim.request_id) is claim:
            del self._claims[claim.request_id]
        return True


__all__ = ["Claim", "RequestTracker"]
