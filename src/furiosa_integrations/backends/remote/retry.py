"""When to try a request again, and how long to wait first.

Only where nothing can be answered twice: the connection was never made (refused, timed
out connecting, no free connection), or the server refused with 429/503 before doing
anything. Never once a response has started: a token that reached the caller stays the
only answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

BACKOFF_BASE = 0.5  # seconds before the first retry; doubles each time
BACKOFF_CAP = 8.0  # the most one wait may last, a server's Retry-After included


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base: float = BACKOFF_BASE
    cap: float = BACKOFF_CAP

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): the server's
        ``Retry-After`` (in seconds) when it gives one, else exponential with jitter."""
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.cap)
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        wait = min(self.base * 2**attempt, self.cap)
        return wait * random.uniform(0.75, 1.25)


__all__ = ["RetryPolicy"]
