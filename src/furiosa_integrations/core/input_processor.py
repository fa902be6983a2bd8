"""Input processing: what a caller asks for, validated and turned into token ids.

The role vLLM's ``InputProcessor`` plays: a prompt (text or token ids) or chat messages
(with tools, images, template variables) and their options become an ``EngineRequest``
(prompt token ids, checked params, the text parsers its output needs), or raise a typed
``InvalidRequestError`` before anything is queued. Pooling inputs become token-id lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    UnsupportedInputError,
    UnsupportedTaskError,
)
from .output_processor import TextParser
from .protocol import NativeEngine, ScorePair
from .request_lifecycle import RequestTracker
from .sampling_params import PoolingParams, SamplingParams, check_token_ids
from .scoring import prepare_pairs
from .text.chat import apply_template, image_parts, normalize_messages
from .text.images import load_image
from .text.reasoning import chat_template_text, reasoning_parser_factory, template_has_thinking
from .text.reasoning_constraint import constrain_after_reasoning
from .text.reasoning_switch import Reasoning, apply_reasoning
from .text.tool_calling import plan_tool_request
from .text.tool_prompt import (
    needs_tool_prompt,
    render_tool_prompt,
    request_format,
    template_supports_tools,
)
from .text.tools import normalize_tool_choice, normalize_tools
from .tokenizer import Tokenizer

Prompt = str | Sequence[int]

# What a model of each task is, and what asking it for another task would be.
_MODEL_KINDS = {
    "generate": "a generation model",
    "embed": "an embedding model",
    "score": "a scoring (cross-encoder) model",
}
_TASK_NAMES = {"generate": "text generation", "embed": "embeddings", "score": "scoring"}


@dataclass
class EngineRequest:
    """A validated generation request, ready to dispatch."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    params: SamplingParams
    parser_factory: Callable[[], TextParser] | None = None
    images: list[Any] = field(default_factory=list)


class InputProcessor:
    """Validates, renders and tokenizes requests for one model's engine."""

    def __init__(
        self,
        native: NativeEngine,
        tokenizer: Tokenizer,
        model_name: str,
        requests: RequestTracker,
        *,
        supports_images: bool = False,
    ) -> None:
        self.native = native
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.requests = requests
        self.supports_images = supports_images

    # ---- text <-> tokens ----

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def render_chat(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        add_generation_prompt: bool = True,
        chat_template_kwargs: dict[str, Any] | None = None,
        tool_call_format: str | None = None,
        reasoning: Reasoning = None,
    ) -> str:
        """The prompt a request with these ``messages`` (and ``tools``) is rendered to."""
        normalized = normalize_messages(messages)
        template = chat_template_text(self.tokenizer, chat_template_kwargs)
        chat_template_kwargs = apply_reasoning(template, chat_template_kwargs, reasoning)
        if needs_tool_prompt(normalized, tools, tool_choice):
            offered = normalize_tools(list(tools or []))
            return render_tool_prompt(
                self.tokenizer,
                normalized,
                offered,
                normalize_tool_choice(tool_choice, offered),
                chat_template_kwargs,
                add_generation_prompt=add_generation_prompt,
                fmt=request_format(template, tool_call_format),
            )
        return apply_template(
            self.tokenizer,
            normalized,
            add_generation_prompt=add_generation_prompt,
            **(chat_template_kwargs or {}),
        )

    @property
    def template_renders_tools(self) -> bool:
        """Whether the model's own chat template renders tools (else our tool prompt does)."""
        return self.renders_tools(None)

    def renders_tools(self, chat_template_kwargs: dict[str, Any] | None) -> bool:
        """Whether the template a request renders with (the model's own, unless
        ``chat_template_kwargs`` names another) renders tools."""
        return template_supports_tools(chat_template_text(self.tokenizer, chat_template_kwargs))

    def template_has_thinking(self, chat_template_kwargs: dict[str, Any] | None = None) -> bool:
        """Whether the chat template (the model's, or a request's override) has a thinking
        section (reasoning output)."""
        return template_has_thinking(chat_template_text(self.tokenizer, chat_template_kwargs))

    # ---- checks every request passes first ----

    def check_serving(self, task: str) -> None:
        """The right task, a live engine and (policy "error") room, before anything else."""
        self.check_task(task)
        self.native.check_alive()  # raises EngineDeadError with the cause
        self.requests.admission.check()

    def check_task(self, task: str) -> None:
        if self.native.task != task:
            kind = _MODEL_KINDS.get(self.native.task, f"a {self.native.task!r} model")
            raise UnsupportedTaskError(
                f"{self.model_name} is {kind}; it does not support {_TASK_NAMES[task]}"
            )

    def _check_context(self, prompt_tokens: int, max_tokens: int | None) -> None:
        limit = self.native.max_model_len
        if prompt_tokens + (max_tokens or 1) > limit:
            raise ContextLengthExceededError(
                max_model_len=limit, prompt_tokens=prompt_tokens, max_tokens=max_tokens
            )

    # ---- generation ----

    def process_generation(
        self,
        prompt: Prompt | None,
        *,
        messages: Sequence[dict[str, Any]] | None = None,
        params: SamplingParams | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        parallel_tool_calls: bool = True,
        request_id: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        images: Sequence[Any] | None = None,
        tool_call_format: str | None = None,
        reasoning: Reasoning = None,
    ) -> EngineRequest:
        """An ``EngineRequest``, or the typed error of the first thing wrong with it."""
        self.check_serving("generate")
        params = params if params is not None else SamplingParams()
        if not isinstance(params, SamplingParams):
            raise InvalidRequestError(f"params must be SamplingParams, got {type(params).__name__}")
        params.verify()
        self.native.check_sampling_params(params)
        if (prompt is None) == (messages is None):
            raise InvalidRequestError("Give exactly one of prompt or messages")
        if not isinstance(parallel_tool_calls, bool):
            raise InvalidRequestError(
                f"parallel_tool_calls must be a bool, got {parallel_tool_calls!r}"
            )
        loaded_images = self._load_images(messages, images)
        text, token_ids, params, parser_factory = self._prompt(
            prompt,
            messages,
            params,
            tools,
            tool_choice,
            chat_template_kwargs,
            parallel_tool_calls,
            tool_call_format,
            reasoning,
        )
        self._check_context(len(token_ids), params.max_tokens)
        if params.structured_outputs is not None:
            self.native.check_structured_outputs(params)
        request_id = self.requests.check_new(request_id)
        return EngineRequest(request_id, text, token_ids, params, parser_factory, loaded_images)

    def prompt_token_ids(
        self,
        prompt: Prompt | None = None,
        *,
        messages: Sequence[dict[str, Any]] | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        tool_call_format: str | None = None,
        reasoning: Reasoning = None,
    ) -> list[int]:
        """The prompt token ids a generation request with these inputs sends to the model
        (rendered and tokenized as ``process_generation`` does; nothing is queued)."""
        self.check_task("generate")
        if (prompt is None) == (messages is None):
            raise InvalidRequestError("Give exactly one of prompt or messages")
        _, token_ids, _, _ = self._prompt(
            prompt,
            messages,
            SamplingParams(),
            tools,
            tool_choice,
            chat_template_kwargs,
            True,
            tool_call_format,
            reasoning,
        )
        return token_ids

    def _prompt(
        self,
        prompt: Prompt | None,
        messages: Sequence[dict[str, Any]] | None,
        params: SamplingParams,
        tools: list[dict[str, Any]] | None,
        tool_choice: Any,
        chat_template_kwargs: dict[str, Any] | None,
        parallel_tool_calls: bool,
        tool_call_format: str | None,
        reasoning: Reasoning,
    ) -> tuple[str | None, list[int], SamplingParams, Callable[[], TextParser] | None]:
        """The prompt's text and token ids, the params (with any tool constraint) and the
        output parsers: of ``messages`` rendered with the template, or of a plain prompt."""
        parser_factory: Callable[[], TextParser] | None = None
        text: str | None
        if messages is not None:
            text, params, parser_factory = self._render(
                messages,
                params,
                tools,
                tool_choice,
                chat_template_kwargs,
                parallel_tool_calls,
                tool_call_format,
                reasoning,
            )
            token_ids = self.tokenize(text)
        elif isinstance(prompt, str):
            if not prompt:
                raise InvalidRequestError("prompt must be a non-empty string")
            # A plain prompt gets the tokenizer's special tokens (Gemma's <bos>), as vLLM
            # and furiosa-llm add them; a rendered chat template already holds its own.
            text, token_ids = prompt, self.tokenize(prompt, add_special_tokens=True)
        elif isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
            text, token_ids = None, check_token_ids(prompt, "prompt token ids")
        else:
            raise InvalidRequestError(
                f"prompt must be a string or a list of token ids, got {type(prompt).__name__}"
            )
        if not token_ids:
            raise InvalidRequestError("The prompt is empty after tokenization")
        return text, token_ids, params, parser_factory

    def _render(
        self,
        messages: Sequence[dict[str, Any]],
        params: SamplingParams,
        tools: list[dict[str, Any]] | None,
        tool_choice: Any,
        chat_template_kwargs: dict[str, Any] | None,
        parallel_tool_calls: bool,
        tool_call_format: str | None,
        reasoning: Reasoning,
    ) -> tuple[str, SamplingParams, Callable[[], TextParser] | None]:
        """A chat's prompt, its params (with any tool constraint, after any reasoning) and
        its output parsers."""
        normalized = normalize_messages(messages, allow_images=self.supports_images)
        template = chat_template_text(self.tokenizer, chat_template_kwargs)
        chat_template_kwargs = apply_reasoning(template, chat_template_kwargs, reasoning)
        if needs_tool_prompt(normalized, tools, tool_choice):
            plan = plan_tool_request(
                self.tokenizer,
                normalized,
                list(tools or []),
                tool_choice,
                params,
                chat_template_kwargs,
                parallel_tool_calls=parallel_tool_calls,
                tool_call_format=tool_call_format,
            )
            return plan.prompt, plan.params, plan.parser_factory
        if tool_call_format is not None:
            request_format(template, tool_call_format)  # a bad name fails without tools too
        text = apply_template(self.tokenizer, normalized, **(chat_template_kwargs or {}))
        params = constrain_after_reasoning(params, template, text)
        return text, params, reasoning_parser_factory(self.tokenizer, text, chat_template_kwargs)

    def _load_images(
        self, messages: Sequence[dict[str, Any]] | None, images: Sequence[Any] | None
    ) -> list[Any]:
        """Images of a request, for a model that accepts them; a clear error otherwise."""
        parts = image_parts(messages) if messages is not None else []
        if not parts and not images:
            return []
        if not self.supports_images:
            raise UnsupportedInputError(
                f"{self.model_name} is a text-only model: image inputs are not supported"
            )
        return [load_image(part) for part in parts] + list(images or [])

    # ---- pooling ----

    def process_scoring(
        self, query: object, documents: object, params: PoolingParams
    ) -> list[ScorePair]:
        """Scoring inputs checked and encoded as the model's query-document pairs."""
        self.check_serving("score")
        return prepare_pairs(self.tokenizer, self.native.max_model_len, query, documents, params)

    def process_pooling(
        self, texts: Sequence[str | Sequence[int]], params: PoolingParams
    ) -> list[list[int]]:
        """Embedding inputs checked and tokenized: each a text or a list of token ids (kept
        as given, truncated like text)."""
        self.check_serving("embed")
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidRequestError("texts must be a list of strings")
        if not texts:
            raise InvalidRequestError("texts must not be empty")
        token_inputs: dict[int, list[int]] = {}
        for i, text in enumerate(texts):
            if isinstance(text, Sequence) and not isinstance(text, (str, bytes)):
                token_inputs[i] = check_token_ids(text, f"texts[{i}] as token ids")
            elif not isinstance(text, str):
                raise InvalidRequestError(f"texts[{i}] must be a string, got {type(text).__name__}")
        params.verify()
        limit = self.native.max_model_len
        if params.truncate_prompt_tokens not in (None, -1):
            limit = min(limit, int(params.truncate_prompt_tokens))  # type: ignore[arg-type]
        truncate = params.truncate_prompt_tokens is not None
        strings = [t for t in texts if isinstance(t, str)]
        encoded = iter(
            self.tokenizer(strings, add_special_tokens=True, truncation=truncate, max_length=limit)[
                "input_ids"
            ]
            if strings
            else []
        )
        prompts = [
            (token_inputs[i][:limit] if truncate else token_inputs[i])
            if i in token_inputs
            else list(next(encoded))
            for i in range(len(texts))
        ]
        for ids in prompts:
            if len(ids) > self.native.max_model_len:
                raise ContextLengthExceededError(
                    max_model_len=self.native.max_model_len, prompt_tokens=len(ids), max_tokens=None
                )
        return prompts


__all__ = ["EngineRequest", "InputProcessor", "Prompt"]
