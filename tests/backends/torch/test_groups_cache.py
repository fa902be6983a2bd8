"""A GGUF model's groups are found once and kept: later loads map them from the cache,
read none of the fp32 linear weights, and give the same bits; a changed checkpoint or an
unreadable file finds nothing stale."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from furiosa_integrations.backends.torch import groups_cache
from furiosa_integrations.backends.torch.decoders import FAMILIES, PrefillSegment, load_decoder
from furiosa_integrations.backends.torch.decoders.checkpoint import Checkpoint
from furiosa_integrations.backends.torch.groups_cache import GroupsCache
from furiosa_integrations.backends.torch.kernels.grouped_linear import (
    GroupedWeight,
    native_kernel_loaded,
)
from furiosa_integrations.backends.torch.loader import read_config
from tests.backends.torch import tiny_models

pytestmark = pytest.mark.models
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_q4_1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not native_kernel_loaded():
        pytest.skip("the GGUF kernels are native (x86 with AVX2 and a C++ compiler)")
    return tiny_models.build("llama", tmp_path_factory.mktemp("q4_1"), gguf_groups=True)


@pytest.fixture
def q4_1(tiny_q4_1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny Llama on Q4_1's grid, with an empty groups cache for each test."""
    monkeypatch.setattr(groups_cache, "default_cache_dir", lambda: tmp_path)
    monkeypatch.delenv("FURIOSA_GGUF_WEIGHTS", raising=False)
    return tiny_q4_1


def _kept() -> list[Path]:
    return sorted((groups_cache.default_cache_dir() / "groups").glob("*.safetensors"))


def _logits(decoder: object, prompt: list[int]) -> torch.Tensor:
    decoder.cache.ensure(1, 64)  # type: ignore[attr-defined]
    prefill = decoder.prefill(torch.tensor(prompt), [PrefillSegment(0, 0, len(prompt), 0)])  # type: ignore[attr-defined]
    step = decoder.decode(prefill.argmax(-1), torch.tensor([len(prompt)]))  # type: ignore[attr-defined]
    return torch.cat([prefill, step])


def test_second_load_maps_the_kept_groups(q4_1: Path) -> None:
    config = read_config(q4_1)
    first = load_decoder(q4_1, config, CPU, torch.float32, 256, light_weights=True)
    kept = _kept()
    assert len(kept) == 1 and "Q4_1" in first.weights

    # What a later load's family reader gets: every linear weight from the file, no fp32 read.
    groups = GroupsCache(q4_1, 16).load()
    ckpt = Checkpoint(q4_1, config, CPU, torch.float32, FAMILIES["llama"].anchor, groups=groups)
    model = FAMILIES["llama"].read(ckpt)
    assert ckpt.read_linears == {}
    assert len(groups) == 4 * len(model.layers) + 1  # q/k/v, o, gate/up, down; the head

    second = load_decoder(q4_1, config, CPU, torch.float32, 256, light_weights=True)
    assert second.weights == first.weights and _kept() == kept
    prompt = tiny_models.prompts_of_many_lengths(seed=4)[2]
    assert torch.equal(_logits(first, prompt), _logits(second, prompt))


def test_groups_follow_the_setting_and_the_checkpoint(
    q4_1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The activation width comes from ``FURIOSA_GGUF_WEIGHTS`` at each load (the file holds
    only the weights); a rewritten checkpoint gets a file of its own, and the old one, which
    no load can find any more, is removed."""
    config = read_config(q4_1)
    load_decoder(q4_1, config, CPU, torch.float32, 256, light_weights=True)
    monkeypatch.setenv("FURIOSA_GGUF_WEIGHTS", "int8")
    int8 = load_decoder(q4_1, config, CPU, torch.float32, 256, light_weights=True)
    assert "8-bit activations" in int8.weights and len(_kept()) == 1
    monkeypatch.setenv("FURIOSA_GGUF_WEIGHTS", "0")  # fp16: the cache is not consulted
    assert "Q4_1" not in load_decoder(q4_1, config, CPU, torch.float32, 256, True).weights
    monkeypatch.delenv("FURIOSA_GGUF_WEIGHTS")

    weights = q4_1 / "model.safetensors"
    stat = weights.stat()
    (before,) = _kept()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load_decoder(q4_1, config, CPU, torch.float32, 256, light_weights=True)
    (after,) = _kept()
    assert after != before and GroupsCache(q4_1, 16).file == after


def test_only_files_no_load_can_find_are_removed(q4_1: Path, tmp_path: Path) -> None:
    """Writing a file prunes the folder: a file whose checkpoint is gone goes; the current
    checkpoint's file, and a file that does not say where it came from (written before
    files did), stay."""
    config = read_config(q4_1)
    load_decoder(q4_1, config, CPU, torch.float32, 256, light_weights=True)
    (current,) = _kept()
    gone = tmp_path / "deleted-venv" / "model"
    gone.mkdir(parents=True)
    (gone / "model.safetensors").write_bytes((q4_1 / "model.safetensors").read_bytes())
    cache = GroupsCache(gone, 16)
    cache.save(GroupsCache(q4_1, 16).load())
    unnamed = current.with_name("older-0123456789abcdef.safetensors")
    save_file({"w/codes": torch.zeros(2, dtype=torch.uint8)}, str(unnamed))
    assert set(_kept()) == {current, cache.file, unnamed}

    for file in gone.iterdir():
        file.unlink()
    gone.rmdir()
    assert groups_cache.prune_unreachable(current.parent) == [cache.file]
    assert set(_kept()) == {current, unnamed}


def test_an_unreadable_file_is_ignored_and_replaced(
    q4_1: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = read_config(q4_1)
    expected = load_decoder(q4_1, config, CPU, torch.float32, 256, light_weights=True)
    (kept,) = _kept()
    kept.write_bytes(b"not a safetensors file")
    decoder = load_decoder(q4_1, config, CPU, torch.float32, 256, light_weights=True)
    assert "unreadable groups cache" in caplog.text
    prompt = tiny_models.prompts_of_many_lengths(seed=5)[1]
    assert torch.equal(_logits(decoder, prompt), _logits(expected, prompt))
    assert GroupsCache(q4_1, 16).load()  # found again, and written whole


def test_groups_of_another_shape_are_not_used(q4_1: Path) -> None:
    """A kept file that does not fit the checkpoint (the same key for another weight) is
    not trusted: that weight is read and its groups found again."""
    config = read_config(q4_1)
    expected = load_decoder(q4_1, config, CPU, torch.float32, 256, light_weights=True)
    cache = GroupsCache(q4_1, 16)
    groups = cache.load()
    o, qkv = "layers.0.self_attn.o_proj", next(k for k in groups if "q_proj" in k)
    codes, scales, mins, bits = groups[qkv]
    cache.save({**groups, o: GroupedWeight(codes.clone(), scales.clone(), mins.clone(), bits)})
    ckpt = Checkpoint(
        q4_1, config, CPU, torch.float32, FAMILIES["llama"].anchor, groups=cache.load()
    )
    FAMILIES["llama"].read(ckpt)
    assert list(ckpt.read_linears) == [o]
    decoder = load_decoder(q4_1, config, CPU, torch.float32, 256, light_weights=True)
    prompt = tiny_models.prompts_of_many_lengths(seed=6)[0]
    assert torch.equal(_logits(decoder, prompt), _logits(expected, prompt))
