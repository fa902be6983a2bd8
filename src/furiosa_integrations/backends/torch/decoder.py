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
        self.cache = SlotKVCache(
            len(self.layers), self.num_kv_heads, self.head_dim, dtype, device, max_len
        )

    def _rope(self, hidden: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self.inner.rotary_emb(hidden.unsqueeze(0), positions.unsqueeze(0))
        return cos[0].unsqueeze(1), sin[0].unsqueeze(1)  # [T, 1, d] broadcasts over heads

    def _qkv(
        self, layer: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        attn = layer.self_attn
        tokens = x.shape[0]
        q = attn.q_proj(x).view(tokens, self.num_heads, self.head_dim)
        k = attn.k_proj(x).view(tokens, self.num_kv_heads, self.head_dim)
        v = attn.v_proj(x).view(tokens, self.num_kv_heads, self.head_dim)
        if hasattr(attn, "q_norm"):  # Qwen3
            q = attn.q_norm(q)
            k = attn.k_norm(k)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        return q, k, v

    def _layer(
        self, layer: Any, index: int, hidden: torch.Tensor, attend: Any, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        q, k, v = self._qkv(layer, layer.input_layernorm(hidden), cos, sin)
        out = attend(index, q, k, v)
        hidden = hidden + layer.self_attn.o_proj(out)
        return hidden + layer.mlp(layer.post_attention_layernorm(hidden))

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(self.inner.norm(hidden)).float()

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One new token for each of slots ``0..B-1``; returns logits ``[B, V]``."""
        batch = tokens.shape[0]
        span = int(positions.max().item()) + 1
        cache = self.cache
        rows = torch.arange(batch, device=self.device)
        # [B, 1, 1, span]: each row sees its own cached positions and the new one.
        mask = (torch.arange(span, device=self.device)[None, :] <= positions[:, None])[:, None, None, :]

        def attend(index: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            cache.keys[index, rows, :, positions] = k
            cache.values[index, rows, :, positions] = v
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
            [
                torch.arange(s.position, s.position + s.length, device=self.device)
                for s in segments
            ]
        )
        slots = torch.cat(
            [torch.full((s.length,), s.slot, device=self.device, dtype=torch.long) for s in segments]
        )
        masks = []
        for s in segments:
            if s.position == 0:
                masks.append(None)  # plain causal
            else:  # continues a cached prefix: new token i sees positions <= position + i
                cols = torch.arange(s.position + s.length, device=self.device)
                rows_pos = torch.arange(s.position, s.position + s.length, device=self.device)
                masks.append((cols[None, :] <= rows_pos[:, None])[None, None])

        def attend(index: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            cache.keys[index, slots, :, positions] = k
            cache.values[index, slots, :, positions] = v
            outs = []
            for s, mask in zip(segments, masks, strict=True):
                end = s.position + s.length
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
