"""A batched forward pass for Llama-family decoders over the slot KV cache.

transformers' own forward assumes one cache position per batch; continuous batching
needs every sequence at its own position. We reuse the model's modules (projections,
norms, MLPs, rotary embedding) and write only the attention, so any Llama-shaped
checkpoint (Llama, Mistral, Qwen2, Qwen3) loads unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .kv_cache import SlotKVCache

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")


@dataclass
class PrefillSegment:
    """One sequence's new tokens inside a packed prefill batch."""

    slot: int
    start: int  # index of its first token in the packed batch
    length: int  # number of new tokens
    position: int  # position of its first new token (cached prefix length)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaFamilyDecoder:
    """Holds the model and runs prefill and decode steps against a ``SlotKVCache``."""

    def __init__(self, model: Any, device: torch.device, dtype: torch.dtype, max_len: int) -> None:
        config = model.config
        if config.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"The torch backend runs {', '.join(SUPPORTED_MODEL_TYPES)} decoders; "
                f"this model is {config.model_type!r}"
            )
        self.model = model
        self.inner = model.model
        self.layers = list(self.inner.layers)
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = getattr(config, "num_key_value_heads", None) or self.num_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        self.vocab_size = config.vocab_size
        self.device = device
        self._fused = [self._fuse(layer) for layer in self.layers]
        self.cache = SlotKVCache(
            len(self.layers), self.num_kv_heads, self.head_dim, dtype, device, max_len
        )

    @staticmethod
    def _fuse(layer: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, Any]:
        """One matmul for q/k/v and one for gate/up: fewer, larger GEMMs per step.

        The original modules' weights become views of the fused tensors, so nothing is
        stored twice.
        """
        attn, mlp = layer.self_attn, layer.mlp
        projections = (attn.q_proj, attn.k_proj, attn.v_proj)
        qkv = torch.cat([p.weight.data for p in projections])
        bias = None
        if all(p.bias is not None for p in projections):
            bias = torch.cat([p.bias.data for p in projections])
        offset = 0
        for p in projections:
            rows = p.weight.shape[0]
            p.weight.data = qkv[offset : offset + rows]
            if bias is not None:
                p.bias.data = bias[offset : offset + rows]
            offset += rows
        gate_up = torch.cat([mlp.gate_proj.weight.data, mlp.up_proj.weight.data])
        half = mlp.gate_proj.weight.shape[0]
        mlp.gate_proj.weight.data = gate_up[:half]
        mlp.up_proj.weight.data = gate_up[half:]
        return qkv, bias, gate_up, mlp.act_fn

    def _rope(
        self, hidden: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self.inner.rotary_emb(hidden.unsqueeze(0), positions.unsqueeze(0))
        return cos[0].unsqueeze(1), sin[0].unsqueeze(1)  # [T, 1, d] broadcasts over heads

    def _qkv(
        self, index: int, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        attn = self.layers[index].self_attn
        qkv_weight, qkv_bias = self._fused[index][:2]
        tokens = x.shape[0]
        q_size = self.num_heads * self.head_dim
        kv_size = self.num_kv_heads * self.head_dim
        q, k, v = F.linear(x, qkv_weight, qkv_bias).split([q_size, kv_size, kv_size], dim=-1)
        q = q.reshape(tokens, self.num_heads, self.head_dim)
        k = k.reshape(tokens, self.num_kv_heads, self.head_dim)
        v = v.reshape(tokens, self.num_kv_heads, self.head_dim)
        if hasattr(attn, "q_norm"):  # Qwen3
            q = attn.q_norm(q)
            k = attn.k_norm(k)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        return q, k, v

    def _layer(
        self,
        layer: Any,
        index: int,
        hidden: torch.Tensor,
        attend: Any,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> torch.Tensor:
        q, k, v = self._qkv(index, layer.input_layernorm(hidden), cos, sin)
        out = attend(index, q, k, v)
        hidden = hidden + layer.self_attn.o_proj(out)
        _, _, gate_up_weight, act = self._fused[index]
        gate, up = F.linear(layer.post_attention_layernorm(hidden), gate_up_weight).chunk(2, dim=-1)
        return hidden + layer.mlp.down_proj(act(gate) * up)

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(self.inner.norm(hidden)).float()

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One new token for each of slots ``0..B-1``; returns logits ``[B, V]``."""
        batch = tokens.shape[0]
        span = int(positions.max().item()) + 1
        cache = self.cache
        # [B, 1, 1, span]: each row sees its own cached positions and the new one.
        mask = (torch.arange(span, device=self.device)[None, :] <= positions[:, None])[
            :, None, None, :
        ]
        # scatter_ along the position axis writes one K/V per row in place (index_put is slow here).
        where = positions.view(batch, 1, 1, 1).expand(batch, self.num_kv_heads, 1, self.head_dim)

        def attend(index: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            cache.keys[index, :batch].scatter_(2, where, k.unsqueeze(2))
            cache.values[index, :batch].scatter_(2, where, v.unsqueeze(2))
            keys = cache.keys[index, :batch, :, :span]
            values = cache.values[index, :batch, :, :span]
            out = F.scaled_dot_product_attention(
                q.unsqueeze(2), keys, values, attn_mask=mask, enable_gqa=True
            )
            return out.reshape(batch, self.num_heads * self.head_dim)

        hidden = self.inner.embed_tokens(tokens)
        cos, sin = self._rope(hidden, positions)
        for index, layer in enumerate(self.layers):
            hidden = self._layer(layer, index, hidden, attend, cos, sin)
        return self._logits(hidden)

    @torch.inference_mode()
    def prefill(self, tokens: torch.Tensor, segments: list[PrefillSegment]) -> torch.Tensor:
        """Run packed new tokens of several sequences; returns each one's last logits ``[S, V]``."""
        cache = self.cache
        positions = torch.cat(
            [torch.arange(s.position, s.position + s.length, device=self.device) for s in segments]
        )
        masks: list[torch.Tensor | None] = []
        for s in segments:
            if s.position == 0:
                masks.append(None)  # plain causal
            else:  # continues a cached prefix: new token i sees positions <= position + i
                cols = torch.arange(s.position + s.length, device=self.device)
                rows_pos = torch.arange(s.position, s.position + s.length, device=self.device)
                masks.append((cols[None, :] <= rows_pos[:, None])[None, None])

        def attend(index: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            outs = []
            for s, mask in zip(segments, masks, strict=True):
                end = s.position + s.length
                new = slice(s.start, s.start + s.length)
                cache.keys[index, s.slot, :, s.position : end] = k[new].transpose(0, 1)
                cache.values[index, s.slot, :, s.position : end] = v[new].transpose(0, 1)
                qs = q[s.start : s.start + s.length].transpose(0, 1).unsqueeze(0)
                ks = cache.keys[index, s.slot : s.slot + 1, :, :end]
                vs = cache.values[index, s.slot : s.slot + 1, :, :end]
                o = F.scaled_dot_product_attention(
                    qs, ks, vs, attn_mask=mask, is_causal=mask is None, enable_gqa=True
                )
                outs.append(o[0].transpose(0, 1).reshape(s.length, self.num_heads * self.head_dim))
            return torch.cat(outs)

        hidden = self.inner.embed_tokens(tokens)
        cos, sin = self._rope(hidden, positions)
        for index, layer in enumerate(self.layers):
            hidden = self._layer(layer, index, hidden, attend, cos, sin)
        last = torch.tensor([s.start + s.length - 1 for s in segments], device=self.device)
        return self._logits(hidden[last])
