"""The one decoder forward every native family runs, parametrized by its ``DecoderModel``.

transformers' own forward assumes one cache position per batch; continuous batching
needs every sequence at its own position. So the forward is ours, over weights read
straight from the checkpoint, and transformers' modeling code stays out of start-up.
The layers' math (``layer_stack.LayerStack``) is written once for all families: pre-norm
(Llama), sandwich norms (Gemma 2/3), output-only norms (OLMo 2) and parallel residuals
(GPT-NeoX) are which norms are present, not separate code paths. Here: packing the
weights, embeddings, RoPE tables and the attention views each step needs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..huge_pages import HugePageMove
from ..kv_cache import SlotKVCache
from ..layers import activation
from ..packed_linear import (
    GroupedWeight,
    Weight,
    describe_weights,
    gguf_activation_bits,
    pack,
    pack_all,
    pack_light,
    packing_available,
)
from .attention import DecodeAttention, PrefillAttention
from .interface import PrefillSegment
from .layer_stack import LayerStack, compile_stack
from .model import DecoderModel
from .rope import RotaryTables


class NativeDecoder:
    """Holds a family's weights and runs prefill and decode steps against a ``SlotKVCache``."""

    native = True

    def __init__(
        self,
        model: DecoderModel,
        device: torch.device,
        dtype: torch.dtype,
        max_len: int,
        light_weights: bool = False,
        on_packed: Callable[[torch.Tensor, Weight], None] | None = None,
    ) -> None:
        """``on_packed(plain, packed)`` hears of each weight packed here (weights that
        arrive packed, groups from ``groups_cache``, stay as they are)."""
        self.model = model
        self.family = model.family
        self.vocab_size = model.vocab_size
        self.device = device
        self.dtype = dtype
        activation(model.act)  # an unsupported activation is refused at load
        # The distinct sliding windows (None: full attention); each step builds a mask per window.
        self.windows = list(dict.fromkeys(layer.window for layer in model.layers))
        # Packed weights replace the plain ones; lighter ones (fp32 math) when asked for:
        # a GGUF model's own groups, else fp16.
        packer: Callable[[torch.Tensor], Weight] | None = None
        if light_weights and dtype == torch.float32:
            packer = functools.partial(pack_light, activation_bits=gguf_activation_bits())
        elif packing_available(device, dtype):
            packer = pack
        self.weights = str(dtype).removeprefix("torch.")
        self._pages: HugePageMove | None = None
        if packer is not None:
            fours = [(layer.qkv, layer.o, layer.up, layer.down) for layer in model.layers]
            packed = [w for four in fours for w in four] + [model.lm_head]
            todo = [i for i, w in enumerate(packed) if isinstance(w, torch.Tensor)]
            done = pack_all([_plain(packed[i]) for i in todo], packer)
            for i, weight in zip(todo, done, strict=True):
                if on_packed is not None:
                    on_packed(_plain(packed[i]), weight)
                packed[i] = weight
            # the groups into 2 MB pages, in a step's order, between steps (``settle``)
            self._pages = HugePageMove.of(packed)
            for i, layer in enumerate(model.layers):
                layer.qkv, layer.o, layer.up, layer.down = packed[4 * i : 4 * i + 4]
            model.lm_head = packed[-1]  # a tied head's embedding table stays plain
            self.weights = describe_weights(packed)
        # Decode steps run the layers scripted; prefill runs the same module eagerly: its
        # many-row linears dominate (measured 3-10% faster eager), and TorchScript's first,
        # profiling calls would add ~0.1 s to the first reply.
        # GGUF's groups round each activation row per group: attention and norms then run
        # our kernels too (every row on its own: ``cache_attention``), or a batch shape's
        # last-bit differences could flip a rounding and show.
        self.own_kernels = any(
            isinstance(w, GroupedWeight)
            for layer in model.layers
            for w in (layer.qkv, layer.o, layer.up, layer.down)
        )
        # Our kernels' attention reads a slot only up to its own position, every one of them
        # written first, so their cache is not zeroed. The masked attention of the other path
        # gives unwritten positions zero weight, and zero times garbage can be NaN.
        self.cache = SlotKVCache(
            len(model.layers),
            model.num_kv_heads,
            model.head_dim,
            dtype,
            device,
            max_len,
            zeroed=not self.own_kernels,
        )
        self.rotary = RotaryTables(model.rope, dtype)
        self.layers = LayerStack(model, self.windows, self.own_kernels)
        self.stack = compile_stack(self.layers, device)

    # ---- the engine-facing steps (the layers' math is in ``LayerStack``) ----

    @torch.inference_mode()  # the weights may be inference tensors
    def settle(self) -> bool:
        """One piece of the move into huge pages the load left for later (``huge_pages``);
        True while pieces are left."""
        if self._pages is None:
            return False
        if not self._pages.advance():
            self._pages = None
        return self._pages is not None

    def _embed(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        m = self.model
        hidden = F.embedding(tokens, m.embed)
        if m.embed_scale is not None:
            hidden = hidden * m.embed_scale
        if m.position_embed is not None:
            hidden = hidden + F.embedding(positions, m.position_embed)
        return hidden

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One new token for each of slots ``0..B-1``; returns logits ``[B, V]``."""
        view = DecodeAttention(self.cache, positions, self.windows, masks=not self.own_kernels)
        cos, sin = self.rotary(positions)
        hidden = self.stack.decode(
            self._embed(tokens, positions),
            cos,
            sin,
            self.cache.keys,
            self.cache.values,
            view.where,
            view.lows,
            view.masks,
            view.span,
        )
        return self.stack.logits(hidden)

    @torch.inference_mode()
    def prefill(self, tokens: torch.Tensor, segments: list[PrefillSegment]) -> torch.Tensor:
        """Run packed new tokens of several sequences; returns each one's last logits ``[S, V]``."""
        positions = torch.cat(
            [torch.arange(s.position, s.position + s.length, device=self.device) for s in segments]
        )
        attend = PrefillAttention(
            self.cache, segments, set(self.windows), self.model.attn_softcap, self.own_kernels
        )
        cos, sin = self.rotary(positions)
        hidden = self._embed(tokens, positions)
        cache = self.cache
        for i, layer in enumerate(self.model.layers):
            if self.own_kernels:  # K/V straight into the cache, every row attended on its own
                q = self.layers.query_into_cache(
                    i,
                    hidden,
                    cos,
                    sin,
                    cache.keys[i],
                    cache.values[i],
                    attend.slots,
                    attend.positions,
                )
                out = attend.cached(i, layer, q)
            else:
                q, k, v = self.layers.attention_inputs(i, hidden, cos, sin)
                out = attend(i, layer, q, k, v)
            hidden = self.layers.layer_output(i, hidden, out)
        last = torch.tensor([s.start + s.length - 1 for s in segments], device=self.device)
        return self.layers.logits(hidden[last])


def _plain(weight: Weight) -> torch.Tensor:
    assert isinstance(weight, torch.Tensor), "a decoder's weights are packed once"
    return weight
