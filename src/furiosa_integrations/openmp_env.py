"""OpenMP settings for the torch engines, applied before torch loads.

The torch engines run model steps on one thread while an asyncio loop thread detokenizes
and serves adapters, so the process always has more runnable threads than torch's OpenMP
team. With OpenMP's default wait policy, idle team members spin between the many small
parallel regions of a decode step and take cores from that loop thread (and from
anything else on the machine); on a shared 2-core machine a decode step ran 5-10x slower
than with sleeping waiters. libgomp reads the policy once, when torch loads it, so this
only takes effect when it runs first, and it never overrides a value the user set.
"""

from __future__ import annotations

import os
import sys


def prefer_passive_wait() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless set already or torch is already loaded.

    Returns whether it was set. ``FURIOSA_KEEP_OMP_WAIT_POLICY=1`` turns this off.
    """
    if "OMP_WAIT_POLICY" in os.environ or os.environ.get("FURIOSA_KEEP_OMP_WAIT_POLICY"):
        return False
    if "torch" in sys.modules:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
