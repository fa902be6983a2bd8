"""The tokenizer the engine uses for a model directory.

A directory with ``tokenizer.json`` gets ``FastTokenizer``: the same Rust tokenizer that
transformers' fast tokenizers wrap, read directly, plus the chat template rendered as
transformers renders it. That keeps transformers (a second or more of imports) out of
start-up. What it does not implement itself, it hands to a transformers tokenizer
loaded on first use, so anything written against transformers' API still works.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from .chat_template import render_chat_template

# transformers' named special tokens, the ones it passes to chat templates.
_SPECIAL_TOKEN_NAMES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


def load_tokenizer(path: str | Path) -> Any:
    """``FastTokenizer`` when the directory has ``tokenizer.json``, else transformers'."""
    directory = Path(path)
    if (directory / "tokenizer.json").exists():
        return FastTokenizer(directory)
    return load_transformers_tokenizer(directory)


def load_transformers_tokenizer(path: str | Path, *, slow: bool = False) -> Any:
    """transformers' tokenizer for ``path`` (xgrammar and furiosa-llm's API need its class);
    ``slow``: the slow (Python) tokenizer, as ``EngineArgs(tokenizer_mode="slow")`` asks."""
    directory = Path(path)
    if (directory / "tokenizer.json").exists() and not slow:
        # AutoTokenizer first resolves the model's config class, which imports the modeling
        # stack (~2 s); the generic fast tokenizer reads the same files.
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(directory))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), use_fast=not slow)


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # serialised AddedToken
        value = value.get("content")
    return value if isinstance(value, str) else None


class FastTokenizer:
    """The subset of transformers' tokenizer API the engine calls, over ``tokenizers``."""

    def __init__(self, directory: Path) -> None:
        self.name_or_path = str(directory)
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # sentence-transformers exports carry fixed padding/truncation; transformers clears
        # both and applies them per call, and so do we.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        config_file = directory / "tokenizer_config.json"
        config: dict[str, Any] = json.loads(config_file.read_text()) if config_file.exists() else {}
        self.special_tokens_map: dict[str, str] = {}
        for name in _SPECIAL_TOKEN_NAMES:
            text = _token_text(config.get(name))
            if text is not None:
                self.special_tokens_map[name] = text
        self.clean_up_tokenization_spaces = bool(config.get("clean_up_tokenization_spaces", False))
        self.model_max_length = config.get("model_max_length")
        self.chat_template = self._read_chat_template(directory, config)
        self._hf: Any = None
        self._hf_lock = threading.Lock()
        self._truncating: Tokenizer | None = None
        self._truncating_lock = threading.Lock()

    @staticmethod
    def _read_chat_template(directory: Path, config: dict[str, Any]) -> str | dict[str, str] | None:
        jinja = directory / "chat_template.jinja"
        if jinja.exists():
            return jinja.read_text()
        template = config.get("chat_template")
        if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
            return {t["name"]: t["template"] for t in template}
        return template if isinstance(template, str) else None

    # ---- special tokens ----

    def _token_id(self, name: str) -> int | None:
        text = self.special_tokens_map.get(name)
        return None if text is None else self._tokenizer.token_to_id(text)

    @property
    def eos_token(self) -> str | None:
        return self.special_tokens_map.get("eos_token")

    @property
    def bos_token(self) -> str | None:
        return self.special_tokens_map.get("bos_token")

    @property
    def pad_token(self) -> str | None:
        return self.special_tokens_map.get("pad_token")

    @property
    def eos_token_id(self) -> int | None:
        return self._token_id("eos_token")

    @property
    def bos_token_id(self) -> int | None:
        return self._token_id("bos_token")

    @property
    def pad_token_id(self) -> int | None:
        return self._token_id("pad_token")

    def __len__(self) -> int:
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    # ---- encoding and decoding ----

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def __call__(
        self,
        text: str | list[str],
        text_pair: str | list[str] | None = None,
        add_special_tokens: bool = True,
        truncation: bool = False,
        max_length: int | None = None,
        return_token_type_ids: bool | None = None,
    ) -> dict[str, Any]:
        """``{"input_ids": ...}`` for one text or a batch; truncation keeps special tokens.

        With ``text_pair`` (one per text): the pairs joined as the tokenizer's post-processor
        joins them (``[CLS] a [SEP] b [SEP]``) with their ``token_type_ids``; truncation cuts
        the longer text first, as transformers' ``truncation=True`` does."""
        single = isinstance(text, str)
        texts = [text] if isinstance(text, str) else list(text)
        inputs: list[Any] = texts
        if text_pair is not None:
            pairs = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if len(pairs) != len(texts):
                raise ValueError(f"{len(texts)} texts but {len(pairs)} text pairs")
            inputs = list(zip(texts, pairs, strict=True))
        if truncation and max_length is not None:
            # tokenizers' own truncation (what transformers uses), on a second instance:
            # switching it on is a setting, which must not leak into concurrent calls.
            with self._truncating_lock:
                if self._truncating is None:
                    self._truncating = Tokenizer.from_str(self._tokenizer.to_str())
                self._truncating.enable_truncation(max_length)
                encodings = self._truncating.encode_batch(
                    inputs, add_special_tokens=add_special_tokens
                )
        else:
            encodings = self._tokenizer.encode_batch(inputs, add_special_tokens=add_special_tokens)
        ids = [list(e.ids) for e in encodings]
        out: dict[str, Any] = {"input_ids": ids[0] if single else ids}
        if text_pair is not None or return_token_type_ids:
            types = [list(e.type_ids) for e in encodings]
            out["token_type_ids"] = types[0] if single else types
        return out

    def decode(self, token_ids: list[int], skip_special_tokens: bool = False) -> str:
        text = str(self._tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens))
        if self.clean_up_tokenization_spaces:
            text = _clean_up_tokenization(text)
        return text

    # ---- chat ----

    def apply_chat_template(
        self,
        conversation: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        documents: list[dict[str, Any]] | None = None,
        chat_template: str | None = None,
        add_generation_prompt: bool = False,
        tokenize: bool = True,
        **kwargs: Any,
    ) -> Any:
        unusual = {"continue_final_message", "return_assistant_tokens_mask", "return_dict"}
        if unusual & {k for k, v in kwargs.items() if v} or any(callable(t) for t in tools or []):
            return self._transformers().apply_chat_template(
                conversation,
                tools=tools,
                documents=documents,
                chat_template=chat_template,
                add_generation_prompt=add_generation_prompt,
                tokenize=tokenize,
                **kwargs,
            )
        if not conversation:
            raise ValueError("Cannot apply chat template to an empty conversation.")
        text = render_chat_template(
            self._pick_template(chat_template, tools),
            conversation,
            tools=tools,
            documents=documents,
            add_generation_prompt=add_generation_prompt,
            **{**self.special_tokens_map, **kwargs},
        )
        if not tokenize:
            return text
        ids = self.encode(text, add_special_tokens=False)
        return {"input_ids": ids, "attention_mask": [1] * len(ids)}  # transformers 5's default

    def _pick_template(self, chat_template: str | None, tools: list[Any] | None) -> str:
        """The template to render, chosen as transformers' ``get_chat_template`` does."""
        own = self.chat_template
        if isinstance(own, dict):
            if chat_template is not None:
                return own.get(chat_template, chat_template)
            if tools is not None and "tool_use" in own:
                return own["tool_use"]
            if "default" in own:
                return own["default"]
            raise ValueError(
                f"This model has several chat templates and none is the default: {sorted(own)}"
            )
        if chat_template is not None:
            return chat_template
        if own is None:
            raise ValueError("This tokenizer has no chat template")
        return own

    # ---- everything else: transformers' tokenizer ----

    def _transformers(self) -> Any:
        with self._hf_lock:
            if self._hf is None:
                self._hf = load_transformers_tokenizer(self.name_or_path)
            return self._hf

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never for private names (copy, pickle, half-built objects)
            raise AttributeError(name)
        return getattr(self._transformers(), name)


def _clean_up_tokenization(text: str) -> str:
    """transformers' ``clean_up_tokenization``: no space before punctuation and contractions."""
    for before, after in (
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ):
        text = text.replace(before, after)
    return text
