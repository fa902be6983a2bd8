"""A batched forward pass for Llama-family decoders over the slot KV cache.

transformers' own forward assumes one cache position per batch; continuous batching
needs every sequence at its own position. So the whole forward is ours, over weights
read straight from the checkpoint: any Llama-shaped model (Llama, Mistral, Qwen2,
Qwen3) loads unchanged, and transformers' modeling code stays out of start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .kv_cache import SlotKVCache
from .layers import activation, rms_norm
from .loader import load_weights

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")


@dataclass
class PrefillSegment:
    """One sequence's new tokens inside a packed prefill batch."""

    slot: int
    start: int  # index of its first token in the packed batch
    length: int  # number of new tokens
    position: int  # position of its first new token (cached prefix length)


@dataclass
class _LayerWeights:
    input_norm: torch.Tensor
    qkv: torch.Tensor  # q, k and v projections stacked: one GEMM instead of three
    qkv_bias: torch.Tensor | None
    q_norm: torch.Tensor | None  # Qwen3 normalises q and k per head
    k_norm: torch.Tensor | None
    o_proj: torch.Tensor
    o_bias: torch.Tensor | None
    post_norm: torch.Tensor
    gate_up: torch.Tensor  # gate and up projections stacked
    gate_up_bias: torch.Tensor | None
    down: torch.Tensor
    down_bias: torch.Tensor | None


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rope_parameters(config: dict[str, Any]) -> dict[str, Any]:
    """transformers 5 writes ``rope_parameters``; older configs ``rope_theta``/``rope_scaling``."""
    params = dict(config.get("rope_parameters") or {})
    if not params:
        params = dict(config.get("rope_scaling") or {})
        params.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    params.setdefault("rope_type", params.get("type", "default"))
    return params


class LlamaFamilyDecoder:
    """Holds the weights and runs prefill and decode steps against a ``SlotKVCache``."""

    def __init__(
        self,
        path: Path,
        config: dict[str, Any],
        device: torch.device,
        dtype: torch.dtype,
        max_len: int,
    ) -> None:
        model_type = config.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"The torch backend runs {', '.join(SUPPORTED_MODEL_TYPES)} decoders; "
                f"this model is {model_type!r}"
            )
        self.num_heads = int(config["num_attention_heads"])
        self.num_kv_heads = int(config.get("num_key_value_heads") or self.num_heads)
        self.head_dim = int(config.get("head_dim") or config["hidden_size"] // self.num_heads)
        self.vocab_size = int(config["vocab_size"])
        self.eps = float(config.get("rms_norm_eps", 1e-6))
        self.act = activation(config.get("hidden_act", "silu"))
        self.device = device
        self.dtype = dtype
        weights = load_weights(path, device, dtype, anchor="embed_tokens.weight")
        self.embed = weights["embed_tokens.weight"]
        self.norm = weights["norm.weight"]
        # Tied checkpoints (SmolLM2) store no lm_head; it is the embedding matrix.
        self.lm_head = weights.get("lm_head.weight", self.embed)
        self.layers = [
            self._layer_weights(weights, f"layers.{i}.")
            for i in range(int(config["num_hidden_layers"]))
        ]
        self._init_rope(path, config)
        self.cache = SlotKVCache(
            len(self.layers), self.num_kv_heads, self.head_dim, dtype, device, max_len
        )

    @staticmethod
    def _layer_weights(weights: dict[str, torch.Tensor], p: str) -> _LayerWeights:
        def stacked(names: list[str], suffix: str) -> torch.Tensor | None:
            parts = [weights.get(f"{p}{name}.{suffix}") for name in names]
            if any(part is None for part in parts):
                return None
            return torch.cat(parts)  # type: ignore[arg-type]

        qkv = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]
        gate_up = ["mlp.gate_proj", "mlp.up_proj"]
        qkv_weight, gate_up_weight = stacked(qkv, "weight"), stacked(gate_up, "weight")
        if qkv_weight is None or gate_up_weight is None:
            raise ValueError(f"The checkpoint lacks {p}'s q/k/v or gate/up projections")
        return _LayerWeights(
            input_norm=weights[f"{p}input_layernorm.weight"],
            qkv=qkv_weight,
            qkv_bias=stacked(qkv, "bias"),
            q_norm=weights.get(f"{p}self_attn.q_norm.weight"),
            k_norm=weights.get(f"{p}self_attn.k_norm.weight"),
            o_proj=weights[f"{p}self_attn.o_proj.weight"],
            o_bias=weights.get(f"{p}self_attn.o_proj.bias"),
            post_norm=weights[f"{p}post_attention_layernorm.weight"],
            gate_up=gate_up_weight,
            gate_up_bias=stacked(gate_up, "bias"),
            down=weights[f"{p}mlp.down_proj.weight"],
            down_bias=weights.get(f"{p}mlp.down_proj.bias"),
        )

    def _init_rope(self, path: Path, config: dict[str, Any]) -> None:
        params = _rope_parameters(config)
        self._hf_rotary: Any = None
        if params["rope_type"] == "default":
            dim = int(self.head_dim * params.get("partial_rotary_factor", 1.0))
            steps = torch.arange(0, dim, 2, dtype=torch.float, device=self.device) / dim
            self.inv_freq = 1.0 / (float(params["rope_theta"]) ** steps)
            return
        # Scaled RoPE (linear, dynamic, yarn, llama3, ...) is rare in the small models this
        # engine serves; reuse transformers' rotary module for it rather than copy every variant.
        from transformers import AutoConfig
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

        self._hf_rotary = LlamaRotaryEmbedding(AutoConfig.from_pretrained(str(path))).to(
            self.device
        )

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin for ``positions``, shaped ``[T, 1, head_dim]`` to broadcast over heads."""
        if self._hf_rotary is not None:
            probe = torch.empty(1, dtype=self.dtype, device=self.device)
            cos, sin = self._hf_rotary(probe, positions.unsqueeze(0))
            return cos[0].unsqueeze(1), sin[0].unsqueeze(1)
        freqs = positions[:, None].float() * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(self.dtype).unsqueeze(1), emb.sin().to(self.dtype).unsqueeze(1)

    def _qkv(
        self, w: _LayerWeights, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens = x.shape[0]
        q_size = self.num_heads * self.head_dim
        kv_size = self.num_kv_heads * self.head_dim
        q, k, v = F.linear(x, w.qkv, w.qkv_bias).split([q_size, kv_size, kv_size], dim=-1)
        q = q.reshape(tokens, self.num_heads, self.head_dim)
        k = k.reshape(tokens, self.num_kv_heads, self.head_dim)
        v = v.reshape(tokens, self.num_kv_heads, self.head_dim)
        if w.q_norm is not None and w.k_norm is not None:
            q = rms_norm(q, w.q_norm, self.eps)
            k = rms_norm(k, w.k_norm, self.eps)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        return q, k, v

    def _layer(
        self,
        w: _LayerWeights,
        index: int,
        hidden: torch.Tensor,
        attend: Any,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> torch.Tensor:
        q, k, v = self._qkv(w, rms_norm(hidden, w.input_norm, self.eps), cos, sin)
        hidden = hidden + F.linear(attend(index, q, k, v), w.o_proj, w.o_bias)
        gate_up = F.linear(rms_norm(hidden, w.post_norm, self.eps), w.gate_up, w.gate_up_bias)
        gate, up = gate_up.chunk(2, dim=-1)
        return hidden + F.linear(self.act(gate) * up, w.down, w.down_bias)

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(rms_norm(hidden, self.norm, self.eps), self.lm_head).float()

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

        hidden = F.embedding(tokens, self.embed)
        cos, sin = self._rope(positions)
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

        hidden = F.embedding(tokens, self.embed)
        cos, sin = self._rope(positions)
        for index, layer in enumerate(self.layers):
            hidden = self._layer(layer, index, hidden, attend, cos, sin)
        last = torch.tensor([s.start + s.length - 1 for s in segments], device=self.device)
        return self._logits(hidden[last])
