"""A GGUF model's groups, found once and kept on disk for every later load.

Finding the groups (``gguf_groups``) reads every fp32 linear weight of the converted
checkpoint (540 MB for the default model, stacking q/k/v and gate/up on the way) and
checks each group bit for bit: about half a second of every start on two cores. The
groups cannot change while the checkpoint does not, so the first load writes them beside
the converted models (a quarter of fp32's bytes) and later loads map that file instead:
``Checkpoint.linear`` hands the cached groups out and the fp32 values are never read.

A file is keyed by the checkpoint's weight files (path, size, modification time) and by
``LAYOUT``: a changed checkpoint or layout finds no file and writes a new one, and the
files no load can find any more are then removed (``prune_unreachable``). Each weight
is stored under the checkpoint names it was stacked from (``Checkpoint.linear``'s key),
so the file does not depend on the order the decoder packs in. Writing is best-effort: a
read-only cache costs only the speed-up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import torch

from ...models.gguf_cache import default_cache_dir
from .kernels.grouped_linear import GroupedWeight

logger = logging.getLogger(__name__)

# What find_groups writes (codes' packing, padded fp16 scales and minima): bump it when
# that changes, so no older file is read as the new layout.
LAYOUT = 1
_PARTS = ("codes", "scales", "mins")
_CHECKPOINT = "checkpoint"  # the metadata entry naming the checkpoint a file was found in


class GroupsCache:
    """The cached groups of the checkpoint at ``path``, multiplied with ``activation_bits``."""

    def __init__(self, path: Path, activation_bits: int) -> None:
        self.activation_bits = activation_bits
        self.checkpoint = path
        self.file = _file_for(path)

    def load(self) -> dict[str, GroupedWeight]:
        """The groups an earlier load kept, by ``Checkpoint.linear`` key (empty: none yet)."""
        if not self.file.exists():
            return {}
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(self.file))  # mapped, not read: pages come in as used
        except (OSError, SafetensorError) as error:
            logger.warning("ignoring the unreadable groups cache %s (%s)", self.file, error)
            return {}
        # detached: safetensors gives views of one tensor over the whole file, and a view
        # holds its base, so the file's pages would outlive the move into huge pages
        tensors = {key: tensor.detach() for key, tensor in tensors.items()}
        no_mins = torch.empty(0, dtype=torch.int16)
        found = {}
        for name in {key.rsplit("/", 1)[0] for key in tensors}:
            found[name] = GroupedWeight(
                tensors[f"{name}/codes"],
                tensors[f"{name}/scales"],
                tensors.get(f"{name}/mins", no_mins),
                self.activation_bits,
            )
        return found

    def save(self, groups: dict[str, GroupedWeight]) -> None:
        """Keep ``groups`` for later loads (written whole, then renamed into place)."""
        from safetensors.torch import save_file

        tensors = {}
        for name, weight in groups.items():
            for part, tensor in zip(_PARTS, weight[:3], strict=True):
                if tensor.numel():  # Q8_0 has no minima
                    tensors[f"{name}/{part}"] = tensor.contiguous()
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".tmp-", suffix=".part")
            os.close(handle)
            try:
                # the checkpoint it was found in: how `prune_unreachable` tells a stale file
                save_file(tensors, tmp, metadata={_CHECKPOINT: str(self.checkpoint.resolve())})
                os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from other users
                os.replace(tmp, self.file)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except Exception as error:  # a cache that cannot be written must not fail the load
            logger.info("could not keep the groups in %s (%s)", self.file, error)
            return
        prune_unreachable(self.file.parent)


def prune_unreachable(folder: Path) -> list[Path]:
    """Remove the kept files no load can find any more: their checkpoint is gone, or its
    weight files or ``LAYOUT`` changed since (a key holds them). Files written before the
    checkpoint was recorded in them are left alone. Called after each file written; returns
    what it removed."""
    from safetensors import SafetensorError, safe_open

    removed = []
    for file in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as kept:
                checkpoint = (kept.metadata() or {}).get(_CHECKPOINT)
        except (OSError, SafetensorError):  # unreadable: `load` ignores it, its save replaces it
            continue
        if checkpoint is not None and (
            not Path(checkpoint).is_dir() or _file_for(Path(checkpoint)).name != file.name
        ):
            file.unlink(missing_ok=True)
            removed.append(file)
    if removed:
        logger.info("removed %d stale groups file(s): %s", len(removed), [f.name for f in removed])
    return removed


def _file_for(path: Path) -> Path:
    return default_cache_dir() / "groups" / f"{path.name}-{_key(path)}.safetensors"


def _key(path: Path) -> str:
    """The checkpoint's weight files as they are now, and the groups' layout."""
    parts = [f"layout={LAYOUT}", str(path.resolve())]
    for file in sorted(path.glob("*.safetensors")):
        stat = file.stat()
        parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
