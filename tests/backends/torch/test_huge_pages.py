"""A decoder's GGUF groups are moved, a piece at a time between steps, into one buffer of
2 MB pages (fewer TLB misses while a decode step streams them): the same tensors keep the
same values and give the same products, and where the system gives transparent huge
pages, the pages really are huge ones."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

import pytest
import torch

from furiosa_integrations.backends.torch import groups_cache, huge_pages
from furiosa_integrations.backends.torch.decoders import PrefillSegment, load_decoder
from furiosa_integrations.backends.torch.huge_pages import (
    HUGE_PAGE,
    HugePageMove,
    huge_pages_available,
)
from furiosa_integrations.backends.torch.kernels.grouped_linear import (
    GroupedWeight,
    grouped_linear,
    native_kernel_loaded,
)
from furiosa_integrations.backends.torch.loader import read_config
from furiosa_integrations.core.async_engine import AsyncEngine
from furiosa_integrations.engine import SamplingParams
from tests.backends.torch import tiny_models
from tests.backends.torch.kernels.test_grouped_linear import gguf_weight


def anon_huge_kb(address: int) -> int:
    """The huge pages (kB) of this process's mapping that holds ``address``."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if not head.endswith(":"):  # a mapping's header: start-end perms offset ...
            start, end = (int(bound, 16) for bound in head.split("-"))
            inside = start <= address < end
        elif inside and head == "AnonHugePages:":
            return int(line.split()[1])
    return 0


def needs_huge_pages() -> None:
    if not huge_pages_available():
        pytest.skip("no transparent huge pages on this system")


def test_groups_move_piece_by_piece_into_one_buffer_with_the_same_values() -> None:
    needs_huge_pages()
    weights: list[GroupedWeight | torch.Tensor] = [
        gguf_weight(2048, 1024, "Q4_1", seed=1),  # ~1.3 MB of codes, scales and minima
        torch.randn(64, 64).half(),  # not groups: left alone
        gguf_weight(1024, 1024, "Q8_0", seed=2),  # no minima
        gguf_weight(2048, 1024, "Q4_1", seed=3),
    ]
    groups = [w for w in weights if isinstance(w, GroupedWeight)]
    before = [[t.clone() for t in w[:3]] for w in groups]
    x = torch.randn(3, 1024)
    products = [grouped_linear(x, w, None) for w in groups]
    move = HugePageMove.of(weights)
    assert move is not None and not move.done
    pieces = 1
    while move.advance(1 << 20):  # at most 1 MB a call
        pieces += 1
    assert pieces >= move.size // (1 << 20)
    starts = []
    for weight, old, product in zip(groups, before, products, strict=True):
        for was, tensor in zip(old, weight[:3], strict=True):
            assert torch.equal(was, tensor) and was.dtype == tensor.dtype
        assert torch.equal(grouped_linear(x, weight, None), product)
        starts.append(weight.codes.data_ptr())
    assert starts[0] % HUGE_PAGE == 0 and starts == sorted(starts)  # in order, one buffer
    assert anon_huge_kb(starts[0]) >= HUGE_PAGE // 1024


def test_a_tensor_moves_only_once_it_is_whole() -> None:
    needs_huge_pages()
    weight = gguf_weight(4096, 1024, "Q4_1", seed=4)  # 2 MB of codes
    where = weight.codes.data_ptr()
    move = HugePageMove.of([weight])
    assert move is not None
    assert move.advance(1 << 20)  # half the codes copied: still read where they were
    assert weight.codes.data_ptr() == where
    move.finish()
    assert move.done and not move.advance()
    assert weight.codes.data_ptr() != where and weight.codes.data_ptr() % HUGE_PAGE == 0


def test_no_move_without_memory_for_both_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """For a moment the move holds the groups twice: with less than that available, the
    weights stay where they are."""
    needs_huge_pages()
    weight = gguf_weight(2048, 1024, "Q4_1", seed=5)  # ~1.3 MB
    monkeypatch.setattr(huge_pages, "memory_available", lambda: 2 << 20)
    assert HugePageMove.of([weight]) is None
    monkeypatch.setattr(huge_pages, "memory_available", lambda: 8 << 20)
    assert HugePageMove.of([weight]) is not None


def test_huge_pages_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FURIOSA_HUGE_PAGES", "0")
    assert not huge_pages_available()
    assert HugePageMove.of([gguf_weight(64, 64, "Q4_1")]) is None


@pytest.mark.models
def test_a_decoder_gives_the_same_logits_before_and_after_its_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_huge_pages()
    if not native_kernel_loaded():
        pytest.skip("the GGUF kernels are native (x86 with AVX2 and a C++ compiler)")
    monkeypatch.delenv("FURIOSA_GGUF_WEIGHTS", raising=False)
    path = tiny_models.build("llama", tmp_path / "model", gguf_groups=True)
    monkeypatch.setattr(groups_cache, "default_cache_dir", lambda: tmp_path / "cache")
    decoder = load_decoder(path, read_config(path), torch.device("cpu"), torch.float32, 256, True)
    prompt = tiny_models.prompts_of_many_lengths(seed=5)[1]

    def logits() -> torch.Tensor:
        decoder.cache.ensure(1, 64)
        prefill = decoder.prefill(torch.tensor(prompt), [PrefillSegment(0, 0, len(prompt), 0)])
        step = decoder.decode(prefill.argmax(-1), torch.tensor([len(prompt)]))
        return torch.cat([prefill, step])

    first = decoder.model.layers[0].qkv  # type: ignore[attr-defined]
    assert isinstance(first, GroupedWeight)
    where = first.codes.data_ptr()
    before = logits()
    assert decoder.settle()  # a piece: the tiny model's groups are more than 2 MB
    while decoder.settle():
        pass
    assert first.codes.data_ptr() != where and first.codes.data_ptr() % HUGE_PAGE == 0
    assert torch.equal(logits(), before)
    # A second load maps the groups the first one kept; once they have moved, nothing
    # holds that file's pages any more (memory is not spent twice).
    (kept,) = (tmp_path / "cache" / "groups").glob("*.safetensors")
    decoder = load_decoder(path, read_config(path), torch.device("cpu"), torch.float32, 256, True)
    assert str(kept) in Path("/proc/self/maps").read_text()
    while decoder.settle():
        pass
    gc.collect()
    assert str(kept) not in Path("/proc/self/maps").read_text()
    assert torch.equal(logits(), before)


async def test_default_decoders_groups_reach_huge_pages_between_steps(
    chat_engine: AsyncEngine,
) -> None:
    decoder = chat_engine.native.decoder  # type: ignore[attr-defined]
    first = decoder.model.layers[0].qkv
    if not isinstance(first, GroupedWeight):
        pytest.skip("no GGUF groups (native kernels) here")
    needs_huge_pages()
    # The move is idle time's work (and a piece every few steps): a request gets served
    # while it runs, and it is over soon after.
    greedy = SamplingParams(max_tokens=4, temperature=0, ignore_eos=True)
    out = await chat_engine.generate("The ferry leaves at", params=greedy)
    assert len(out.outputs[0].token_ids) == 4
    deadline = time.monotonic() + 30
    while first.codes.data_ptr() % HUGE_PAGE and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert first.codes.data_ptr() % HUGE_PAGE == 0
    assert anon_huge_kb(first.codes.data_ptr()) >= HUGE_PAGE // 1024
    # the scripted decoder's own lists hold the same tensors: they read the new pages too
    assert decoder.stack.fused_codes[0].data_ptr() == first.codes.data_ptr()
    head = decoder.model.lm_head
    assert isinstance(head, GroupedWeight) and head.codes.data_ptr() > first.codes.data_ptr()
