"""Cross-encoders for the pooling engine's ``score`` task: the encoder plus its head.

    BERT              [CLS] hidden -> pooler (dense, tanh) -> classifier        -> logit
    RoBERTa, XLM-R    <s> hidden   -> classifier.dense, tanh -> classifier.out_proj -> logit

then the activation sentence-transformers' ``CrossEncoder`` applies to it (the one its
config names; Sigmoid by default for one label), so scores equal ``CrossEncoder.predict``.
The encoder is ours (``BertEncoder``); other architectures run through transformers'
``AutoModelForSequenceClassification`` (the slower path, logged). The head runs in fp32.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from .encoder import NATIVE_MODEL_TYPES, BertEncoder, check_modules

logger = logging.getLogger(__name__)

# sentence-transformers' activation_fn (a dotted torch class path) -> what it computes.
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Sigmoid": torch.sigmoid,
    "Identity": lambda x: x,
    "Tanh": torch.tanh,
}


class Scorer(Protocol):
    max_positions: int  # the longest pair its position embeddings cover
    native: bool  # our own encoder, or transformers' model

    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        """Pairs ``[B, L]`` -> one fp32 score per pair ``[B]``, activation applied."""
        ...


def num_labels(config: dict[str, Any]) -> int:
    """transformers writes ``id2label`` (one entry per label), not ``num_labels``."""
    labels = config.get("id2label")
    return len(labels) if labels else int(config.get("num_labels", 2))


def activation(path: Path, config: dict[str, Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation ``CrossEncoder`` applies, read where its versions save it."""
    name = None
    st_config = path / "config_sentence_transformers.json"
    if st_config.exists():
        name = json.loads(st_config.read_text()).get("activation_fn")
    name = name or (config.get("sentence_transformers") or {}).get("activation_fn")
    name = name or config.get("sbert_ce_default_activation_function")
    if name is None:
        return torch.sigmoid  # CrossEncoder's default for one label
    short = str(name).rsplit(".", 1)[-1]
    if short not in _ACTIVATIONS:
        raise ValueError(
            f"{path}: the cross-encoder activation {name!r} is not supported by the torch "
            f"engine (supported: {', '.join(_ACTIVATIONS)})"
        )
    return _ACTIVATIONS[short]


def load_scorer(
    path: Path, config: dict[str, Any], device: torch.device, matmul_dtype: torch.dtype
) -> Scorer:
    check_modules(path)
    if num_labels(config) != 1:
        raise ValueError(
            f"{path}: scoring needs a one-label classification head (a reranker); this "
            f"checkpoint has {num_labels(config)} labels"
        )
    act = activation(path, config)
    model_type = config.get("model_type")
    if model_type in NATIVE_MODEL_TYPES:
        return EncoderScorer(BertEncoder(path, config, device, matmul_dtype), model_type, act)
    logger.warning(
        "%s: model_type %r has no native encoder; running it through transformers' "
        "AutoModelForSequenceClassification (the slower path)",
        path.name,
        model_type,
    )
    return TransformersScorer(path, device, matmul_dtype, act)


class EncoderScorer:
    """Our encoder and the checkpoint's classification head."""

    native = True

    def __init__(
        self,
        encoder: BertEncoder,
        model_type: str,
        act: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.encoder = encoder
        self.max_positions = encoder.max_positions
        self.act = act
        w = {k: v.float() for k, v in encoder.head_weights.items()}
        try:
            if model_type == "bert":
                self.dense = (w["pooler.dense.weight"], w["pooler.dense.bias"])
                self.out = (w["classifier.weight"], w["classifier.bias"])
            else:  # RobertaClassificationHead
                self.dense = (w["classifier.dense.weight"], w["classifier.dense.bias"])
                self.out = (w["classifier.out_proj.weight"], w["classifier.out_proj.bias"])
        except KeyError as exc:
            raise ValueError(
                f"The checkpoint has no sequence-classification head ({exc.args[0]} is missing)"
            ) from None

    @torch.inference_mode()
    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        first = self.encoder(ids, mask, token_type_ids)[:, 0]
        pooled = torch.tanh(F.linear(first, *self.dense))
        return self.act(F.linear(pooled, *self.out)[:, 0])


class TransformersScorer:
    """Any other cross-encoder, through transformers' sequence-classification model."""

    native = False

    def __init__(
        self,
        path: Path,
        device: torch.device,
        dtype: torch.dtype,
        act: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(str(path), dtype=dtype)
        self.model: Any = model.to(device).eval()
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 512))
        self.act = act
        self.takes_types = getattr(self.model.config, "type_vocab_size", 0) > 1

    @torch.inference_mode()
    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        extra = {"token_type_ids": token_type_ids} if self.takes_types else {}
        logits = self.model(input_ids=ids, attention_mask=mask, **extra).logits
        return self.act(logits.float()[:, 0])
