"""The forward pass of BERT-style encoders, for the pooling engine.

Our own forward over weights read from the checkpoint (BERT, RoBERTa, XLM-RoBERTa):
transformers' modeling stack stays out of start-up, q/k/v run as one GEMM, and the
matmuls and attention can run in bf16 while embeddings, residuals and LayerNorms stay
fp32 (a residual stream in bf16 was no faster here, and less exact). Other
architectures, decoder-based embedding models included, run through transformers'
``AutoModel`` (the slower path, logged); ``encoder.native`` tells which one a model got.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from .layers import activation
from .loader import load_weights
from .packed_linear import linear, pack, packing_available

NATIVE_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")
# sentence-transformers modules the pooling engine reproduces (the rest would be skipped).
_KNOWN_MODULES = ("Transformer", "Pooling", "Normalize")

logger = logging.getLogger(__name__)


class Encoder(Protocol):
    max_positions: int  # the longest input its position embeddings cover
    native: bool  # our own forward, or transformers' AutoModel

    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token ids, attention mask (and segments of a pair) ``[B, L]`` -> fp32 hidden
        states ``[B, L, H]``."""
        ...


def load_encoder(
    path: Path, config: dict[str, Any], device: torch.device, matmul_dtype: torch.dtype
) -> Encoder:
    check_modules(path)
    model_type = config.get("model_type")
    if model_type in NATIVE_MODEL_TYPES:
        return BertEncoder(path, config, device, matmul_dtype)
    logger.warning(
        "%s: model_type %r has no native encoder; running it through transformers' AutoModel "
        "(the slower path)",
        path.name,
        model_type,
    )
    return TransformersEncoder(path, device, matmul_dtype)


def check_modules(path: Path) -> None:
    """Refuse a sentence-transformers pipeline with modules the engine would skip (a Dense
    projection after pooling, say): its vectors would silently differ."""
    modules_file = path / "modules.json"
    if not modules_file.exists():
        return
    for module in json.loads(modules_file.read_text()):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in _KNOWN_MODULES:
            raise ValueError(
                f"{path}: the sentence-transformers module {module.get('type')!r} is not "
                f"supported by the torch engine (supported: {', '.join(_KNOWN_MODULES)})"
            )


@dataclass
class _LayerWeights:
    qkv: torch.Tensor
    qkv_bias: torch.Tensor
    out: torch.Tensor
    out_bias: torch.Tensor
    attn_norm: tuple[torch.Tensor, torch.Tensor]
    up: torch.Tensor
    up_bias: torch.Tensor
    down: torch.Tensor
    down_bias: torch.Tensor
    mlp_norm: tuple[torch.Tensor, torch.Tensor]


class BertEncoder:
    native = True

    def __init__(
        self, path: Path, config: dict[str, Any], device: torch.device, matmul_dtype: torch.dtype
    ) -> None:
        w = load_weights(path, device, torch.float32, anchor="embeddings.word_embeddings.weight")
        self.num_heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.act = activation(config.get("hidden_act", "gelu"))
        self.matmul_dtype = matmul_dtype
        # RoBERTa numbers positions from padding_idx + 1 and gives padding padding_idx.
        self.roberta_positions = config.get("model_type") != "bert"
        self.pad_token_id = int(config.get("pad_token_id") or 0)
        self.max_positions = int(config.get("max_position_embeddings", 512))
        if self.roberta_positions:
            self.max_positions -= self.pad_token_id + 1  # the positions it skips
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        # Segment embeddings: row 0 for single texts, one row per segment of a pair.
        self.token_types = w.get("embeddings.token_type_embeddings.weight")
        self.token_type = self.token_types[0] if self.token_types is not None else None
        self.embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        # A sequence-classification checkpoint's head (cross-encoders); score_head reads it.
        self.head_weights = {k: v for k, v in w.items() if k.startswith(("pooler.", "classifier."))}

        def mm(name: str) -> torch.Tensor:  # matmul operands live in the matmul dtype
            return w[name].to(matmul_dtype)

        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv = [f"{p}attention.self.{name}" for name in ("query", "key", "value")]
            self.layers.append(
                _LayerWeights(
                    qkv=torch.cat([w[f"{n}.weight"] for n in qkv]).to(matmul_dtype),
                    qkv_bias=torch.cat([w[f"{n}.bias"] for n in qkv]).to(matmul_dtype),
                    out=mm(f"{p}attention.output.dense.weight"),
                    out_bias=mm(f"{p}attention.output.dense.bias"),
                    attn_norm=(
                        w[f"{p}attention.output.LayerNorm.weight"],
                        w[f"{p}attention.output.LayerNorm.bias"],
                    ),
                    up=mm(f"{p}intermediate.dense.weight"),
                    up_bias=mm(f"{p}intermediate.dense.bias"),
                    down=mm(f"{p}output.dense.weight"),
                    down_bias=mm(f"{p}output.dense.bias"),
                    mlp_norm=(w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"]),
                )
            )
        if packing_available(device, matmul_dtype):  # packed weights replace the plain ones
            for layer in self.layers:
                layer.qkv, layer.out = pack(layer.qkv), pack(layer.out)
                layer.up, layer.down = pack(layer.up), pack(layer.down)

    def _norm(
        self, x: torch.Tensor, weight_bias: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], weight_bias[0], weight_bias[1], self.eps)

    @torch.inference_mode()
    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch, width = ids.shape
        if self.roberta_positions:
            positions = torch.cumsum(mask, dim=1) * mask + self.pad_token_id
        else:
            positions = torch.arange(width, device=ids.device).expand(batch, width)
        hidden = F.embedding(ids, self.word) + F.embedding(positions, self.position)
        types = self.token_types
        if types is not None and token_type_ids is not None and types.shape[0] > 1:
            hidden = hidden + F.embedding(token_type_ids, types)  # a pair's two segments
        elif self.token_type is not None:  # one segment (RoBERTa has only one)
            hidden = hidden + self.token_type
        hidden = self._norm(hidden, self.embed_norm)
        keep = mask.bool()[:, None, None, :]  # [B, 1, 1, L]: padding keys are never attended
        heads, head_dim = self.num_heads, hidden.shape[-1] // self.num_heads
        for w in self.layers:
            qkv = linear(hidden.to(self.matmul_dtype), w.qkv, w.qkv_bias)
            q, k, v = qkv.view(batch, width, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
            attn = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
            attn = attn.transpose(1, 2).reshape(batch, width, heads * head_dim)
            hidden = self._norm(linear(attn, w.out, w.out_bias).float() + hidden, w.attn_norm)
            up = self.act(linear(hidden.to(self.matmul_dtype), w.up, w.up_bias))
            hidden = self._norm(linear(up, w.down, w.down_bias).float() + hidden, w.mlp_norm)
        return hidden


class TransformersEncoder:
    """Any other encoder, through transformers' ``AutoModel`` (imports its modeling stack).

    Decoder-based embedding models (last-token pooling) run here too: the pooling engine
    pads on the right, so a causal model's last real token never sees the padding."""

    native = False

    def __init__(self, path: Path, device: torch.device, dtype: torch.dtype) -> None:
        from transformers import AutoModel

        self.model: Any = AutoModel.from_pretrained(str(path), dtype=dtype).to(device).eval()
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 512))

    @torch.inference_mode()
    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        hidden: torch.Tensor = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return hidden.float()
