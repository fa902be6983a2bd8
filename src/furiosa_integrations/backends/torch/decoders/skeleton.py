"""The one decoder forward every native family runs, parametrized by its ``DecoderModel``.

transformers' own forward assumes one cache position per batch; continuous batching
needs every sequence at its own position. So the forward is ours, over weights read
straight from the checkpoint, and transformers' modeling code stays out of start-up.
The per-layer step (``_layer``) is written once for all families: pre-norm (Llama),
sandwich norms (Gemma 2/3), output-only norms (OLMo 2) and parallel residuals (GPT-NeoX)
are which norms are present, not separate code paths.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..kv_cache import SlotKVCache
from ..layers import activation, rms_norm, rms_norm_fp32, soft_cap
from ..packed_linear import Weight, linear, pack, pack_all, pack_fp16, packing_available
from .attention import DecodeAttention, PrefillAttention
from .interface import PrefillSegment
from .model import DecoderModel, LayerWeights, Norm
from .rope import apply_rotary, cos_sin

# (layer index, layer, q, k, v) -> attention output [T, heads * head_dim]
Attend = Callable[[int, LayerWeights, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Tables = list[tuple[torch.Tensor, torch.Tensor]]


class NativeDecoder:
    """Holds a family's weights and runs prefill and decode steps against a ``SlotKVCache``."""

    native = True

    def __init__(
        self,
        model: DecoderModel,
        device: torch.device,
        dtype: torch.dtype,
        max_len: int,
        fp16_weights: bool = False,
    ) -> None:
        self.model = model
        self.family = model.family
        self.vocab_size = model.vocab_size
        self.device = device
        self.dtype = dtype
        self.act = activation(model.act)
        self.windows = {layer.window for layer in model.layers}
        self.cache = SlotKVCache(
            len(model.layers), model.num_kv_heads, model.head_dim, dtype, device, max_len
        )
        # Packed weights replace the plain ones; fp16 ones (fp32 math) when asked for.
        packer: Callable[[torch.Tensor], Weight] | None = None
        if fp16_weights and dtype == torch.float32:
            packer = pack_fp16
        elif packing_available(device, dtype):
            packer = pack
        self.weights_dtype = torch.float16 if packer is pack_fp16 else dtype
        if packer is not None:
            plain = [(layer.qkv, layer.o, layer.up, layer.down) for layer in model.layers]
            weights = [_plain(w) for four in plain for w in four] + [_plain(model.lm_head)]
            packed = pack_all(weights, packer)
            for i, layer in enumerate(model.layers):
                layer.qkv, layer.o, layer.up, layer.down = packed[4 * i : 4 * i + 4]
            model.lm_head = packed[-1]  # a tied head's embedding table stays plain

    # ---- the forward, shared by every family ----

    def _norm(self, x: torch.Tensor, norm: Norm | None) -> torch.Tensor:
        if norm is None:
            return x
        kind, eps = self.model.norm_kind, self.model.eps
        if kind == "layer":
            return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, eps)
        if kind == "rms_fp32":
            return rms_norm_fp32(x, norm.weight, eps)
        return rms_norm(x, norm.weight, eps)

    def _qkv(
        self, w: LayerWeights, x: torch.Tensor, tables: Tables
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.model
        tokens = x.shape[0]
        q_size, kv_size = m.num_heads * m.head_dim, m.num_kv_heads * m.head_dim
        q, k, v = linear(x, w.qkv, w.qkv_bias).split([q_size, kv_size, kv_size], dim=-1)
        if m.qk_norm == "full":  # OLMo 2 normalises the whole projection
            q, k = self._norm(q, w.q_norm), self._norm(k, w.k_norm)
        q = q.reshape(tokens, m.num_heads, m.head_dim)
        k = k.reshape(tokens, m.num_kv_heads, m.head_dim)
        v = v.reshape(tokens, m.num_kv_heads, m.head_dim)
        if m.qk_norm == "head":  # Qwen3 and Gemma 3 normalise each head
            q, k = self._norm(q, w.q_norm), self._norm(k, w.k_norm)
        if tables:
            cos, sin = tables[w.rope]
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        return q, k, v

    def _mlp(self, w: LayerWeights, x: torch.Tensor) -> torch.Tensor:
        up = linear(x, w.up, w.up_bias)
        if self.model.gated_mlp:
            gate, up = up.chunk(2, dim=-1)
            up = self.act(gate) * up
        else:
            up = self.act(up)
        return self._norm(linear(up, w.down, w.down_bias), w.mlp_out_norm)

    def _layer(
        self, index: int, w: LayerWeights, hidden: torch.Tensor, attend: Attend, tables: Tables
    ) -> torch.Tensor:
        m = self.model
        q, k, v = self._qkv(w, self._norm(hidden, w.attn_norm), tables)
        attn = linear(attend(index, w, q, k, v), w.o, w.o_bias)
        attn = self._norm(attn, w.attn_out_norm)
        if m.parallel_residual:  # GPT-NeoX: both branches read the layer's input
            return self._mlp(w, self._norm(hidden, w.mlp_norm)) + attn + hidden
        if m.residual_scale is not None:
            attn = attn * m.residual_scale
        hidden = hidden + attn
        mlp = self._mlp(w, self._norm(hidden, w.mlp_norm))
        if m.residual_scale is not None:
            mlp = mlp * m.residual_scale
        return hidden + mlp

    def _hidden(
        self, tokens: torch.Tensor, positions: torch.Tensor, attend: Attend
    ) -> torch.Tensor:
        m = self.model
        hidden = F.embedding(tokens, m.embed)
        if m.embed_scale is not None:
            hidden = hidden * m.embed_scale
        if m.position_embed is not None:
            hidden = hidden + F.embedding(positions, m.position_embed)
        tables = [cos_sin(table, positions, self.dtype) for table in m.rope]
        for index, layer in enumerate(m.layers):
            hidden = self._layer(index, layer, hidden, attend, tables)
        return hidden

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        m = self.model
        logits = linear(self._norm(hidden, m.final_norm), m.lm_head, m.lm_head_bias)
        if m.logits_divisor is not None:
            logits = logits / m.logits_divisor
        if m.final_softcap is not None:
            logits = soft_cap(logits, m.final_softcap)
        return logits.float()

    # ---- the engine-facing steps ----

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One new token for each of slots ``0..B-1``; returns logits ``[B, V]``."""
        attend = DecodeAttention(self.cache, positions, self.windows, self.model.attn_softcap)
        return self._logits(self._hidden(tokens, positions, attend))

    @torch.inference_mode()
    def prefill(self, tokens: torch.Tensor, segments: list[PrefillSegment]) -> torch.Tensor:
        """Run packed new tokens of several sequences; returns each one's last logits ``[S, V]``."""
        positions = torch.cat(
            [torch.arange(s.position, s.position + s.length, device=self.device) for s in segments]
        )
        attend = PrefillAttention(self.cache, segments, self.windows, self.model.attn_softcap)
        hidden = self._hidden(tokens, positions, attend)
        last = torch.tensor([s.start + s.length - 1 for s in segments], device=self.device)
        return self._logits(hidden[last])


def _plain(weight: Weight) -> torch.Tensor:
    assert isinstance(weight, torch.Tensor), "a decoder's weights are packed once"
    return weight
