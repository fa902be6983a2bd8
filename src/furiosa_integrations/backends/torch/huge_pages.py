"""A decoder's GGUF groups in one buffer of 2 MB pages, in the order a decode step reads them.

A one-row decode step streams ~70 MB of groups through 120 small linears (a few hundred KB
each). In 4 KB pages that is ~17,000 pages a step, and the TLB misses show: the same
linears read from a buffer of 2 MB pages took 0.84-0.95 of the time (Zen 4, weights from
memory, in one process); the same buffer in 4 KB pages, no better than separate tensors.
Linux gives an anonymous mapping huge pages where it is asked to (``madvise``, which
transparent huge pages honour in their default ``madvise`` mode, and in ``always``); the
groups cache's file-backed pages and torch's allocations below 2 MB never get them. Where
the system has no transparent huge pages (other systems, or ``never``), the weights stay as
they are. ``FURIOSA_HUGE_PAGES=0`` keeps them as they are too.
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


def huge_pages_available() -> bool:
    """Whether this process can ask for transparent huge pages (Linux, mode not ``never``)."""
    if os.environ.get("FURIOSA_HUGE_PAGES", "1") == "0" or not hasattr(mmap, "MADV_HUGEPAGE"):
        return False
    try:
        mode = _THP_MODE.read_text()
    except OSError:
        return False
    return "[never]" not in mode


def in_huge_pages(weights: Sequence[Weight]) -> list[Weight]:
    """``weights`` with every CPU ``GroupedWeight`` copied, in order, into one buffer of
    huge pages (the same values); the others, and all of them where huge pages are not
    available, as they are."""
    groups = [w for w in weights if isinstance(w, GroupedWeight) and w.codes.device.type == "cpu"]
    if not groups or not huge_pages_available():
        return list(weights)
    parts = [t for w in groups for t in w[:3] if t.numel()]
    size = sum(_aligned(t) for t in parts)
    # anonymous and private (a shared one is shmem, whose huge pages are off by default);
    # one huge page more, to start on a huge page's boundary
    mapping = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE)
    try:
        mapping.madvise(mmap.MADV_HUGEPAGE)
    except OSError as error:  # refused: the pages would be ordinary ones
        logger.info("huge pages refused (%s); weights stay as they are", error)
        mapping.close()
        return list(weights)
    buffer = torch.frombuffer(mapping, dtype=torch.uint8)  # holds the mapping while used
    offset = -buffer.data_ptr() % HUGE_PAGE
    copies: dict[int, GroupedWeight] = {}
    for weight in groups:
        moved = []
        for tensor in weight[:3]:
            if not tensor.numel():  # Q8_0's empty minima
                moved.append(tensor)
                continue
            count = tensor.numel() * tensor.element_size()
            view = buffer[offset : offset + count].view(tensor.dtype).view(tensor.shape)
            view.copy_(tensor)
            moved.append(view)
            offset += _aligned(tensor)
        codes, scales, mins = moved
        copies[id(weight)] = GroupedWeight(codes, scales, mins, weight.activation_bits)
    logger.info("%d weights' groups (%.0f MB) in 2 MB pages", len(groups), size / 1e6)
    return [copies.get(id(w), w) for w in weights]


def _aligned(tensor: torch.Tensor) -> int:
    return -(-tensor.numel() * tensor.element_size() // _ALIGN) * _ALIGN
