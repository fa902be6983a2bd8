"""A decoder's GGUF groups moved, a piece at a time, into one buffer of 2 MB pages.

A one-row decode step streams ~100 MB of groups through 120 small linears (a few hundred
KB each). In 4 KB pages that is ~25,000 pages a step, and the TLB misses show: the same
linears read from a buffer of 2 MB pages took 0.84-0.95 of the time (Zen 4, weights from
memory, in one process); the same buffer in 4 KB pages, no better than separate tensors.
Linux gives an anonymous mapping huge pages where it is asked to (``madvise``, which
transparent huge pages honour in their default ``madvise`` mode, and in ``always``); the
groups cache's file-backed pages and torch's allocations below 2 MB never get them. Where
the system has no transparent huge pages (other systems, or ``never``), the weights stay as
they are. ``FURIOSA_HUGE_PAGES=0`` keeps them as they are too.

The move is not part of the load: first touching 50 fresh 2 MB pages took ~120 ms on a
VM, more than the copy (~7 ms), and a cold start is load plus first reply. So the load
only reserves the buffer, and the compute thread copies a huge page's worth at a time
between steps, from the engine's first step on (``engine_thread``). A tensor is pointed at
its copy (``Tensor.set_``: every holder of it, the scripted decoder's lists too, sees the
new storage) once it is whole; its values never change, so a step reads the same numbers
before, during and after.
Weights mapped from the groups cache keep that file's pages (clean page cache) mapped until
the last of them has moved: for that moment the process's RSS holds both copies. So the
move is skipped where the system has less than twice the groups' size available.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from .kernels.grouped_linear import GroupedWeight
from .packed_linear import Weight

logger = logging.getLogger(__name__)

HUGE_PAGE = 2 << 20
_ALIGN = 64  # each tensor starts on a cache line
_THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")
_MEMINFO = Path("/proc/meminfo")


def huge_pages_available() -> bool:
    """Whether this process can ask for transparent huge pages (Linux, mode not ``never``)."""
    if os.environ.get("FURIOSA_HUGE_PAGES", "1") == "0" or not hasattr(mmap, "MADV_HUGEPAGE"):
        return False
    try:
        mode = _THP_MODE.read_text()
    except OSError:
        return False
    return "[never]" not in mode


def memory_available() -> int | None:
    """Bytes the system can still give without swapping (``MemAvailable``); None unknown."""
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _layout(tensors: Sequence[torch.Tensor]) -> tuple[list[int], int]:
    """Each tensor's offset in the buffer (one after another, each on a cache line), and
    the bytes they take."""
    offsets, size = [], 0
    for tensor in tensors:
        offsets.append(size)
        size += -(-tensor.numel() * tensor.element_size() // _ALIGN) * _ALIGN
    return offsets, size


class HugePageMove:
    """Copies the CPU ``GroupedWeight``s' tensors, in the order given, into one buffer asked
    for huge pages, ``piece`` bytes a call to ``advance``."""

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        offsets, size = _layout(tensors)
        self.size = size
        # anonymous and private (a shared one is shmem, whose huge pages are off by default);
        # one huge page more, to start on a huge page's boundary
        mapping = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE)
        try:
            mapping.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            mapping.close()
            raise
        self._buffer = torch.frombuffer(mapping, dtype=torch.uint8)  # holds the mapping
        start = -self._buffer.data_ptr() % HUGE_PAGE
        self._offsets = [start + offset for offset in offsets]
        self._tensors = tensors
        self._next = 0  # the tensor being copied
        self._copied = 0  # its bytes copied so far

    @classmethod
    def of(cls, weights: Sequence[Weight]) -> HugePageMove | None:
        """The move for ``weights``' groups; None where there are none or no huge pages."""
        groups = [
            w for w in weights if isinstance(w, GroupedWeight) and w.codes.device.type == "cpu"
        ]
        if not groups or not huge_pages_available():
            return None
        tensors = [t for w in groups for t in w[:3] if t.numel()]  # Q8_0's minima are empty
        if not all(t.is_contiguous() for t in tensors):
            return None
        size, available = _layout(tensors)[1], memory_available()
        if available is not None and 2 * size > available:
            logger.info(
                "weights stay in 4 KB pages: moving %.0f MB of groups needs twice that, "
                "%.0f MB available",
                size / 1e6,
                available / 1e6,
            )
            return None
        try:
            return cls(tensors)
        except OSError as error:  # refused: the pages would be ordinary ones
            logger.info("huge pages refused (%s); weights stay as they are", error)
            return None

    @property
    def done(self) -> bool:
        return self._next == len(self._tensors)

    def advance(self, piece: int = HUGE_PAGE) -> bool:
        """Copy up to ``piece`` more bytes (one huge page's first touch, ~2.4 ms on a VM);
        True while some are left."""
        if self.done:
            return False
        while piece > 0 and not self.done:
            tensor, offset = self._tensors[self._next], self._offsets[self._next]
            source = tensor.reshape(-1).view(torch.uint8)
            count = min(piece, source.numel() - self._copied)
            start = offset + self._copied
            self._buffer[start : start + count].copy_(source[self._copied : self._copied + count])
            self._copied += count
            piece -= count
            if self._copied == source.numel():
                storage = self._buffer.untyped_storage()
                tensor.set_(storage, offset // tensor.element_size(), tensor.shape, tensor.stride())
                self._next += 1
                self._copied = 0
        if self.done:
            logger.info("%d tensors of groups (%.0f MB) in 2 MB pages", self._next, self.size / 1e6)
        return not self.done

    def finish(self) -> None:
        """Copy everything left now."""
        while self.advance(self.size):
            pass
