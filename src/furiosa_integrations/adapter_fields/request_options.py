"""``SamplingOptions`` and ``ChatOptions``: request fields, mapped onto ``engine.stream``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..core import AsyncEngine, SamplingParams, StructuredOutputsParams
from ..errors import UnknownOptionError
from .field_config import FIELD_CONFIG

# Fields that map one-to-one onto SamplingParams options (``stop`` is handled apart).
SAMPLING_OPTIONS = (
    "n",
    "max_tokens",
    "min_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "stop_token_ids",
    "include_stop_str_in_output",
    "ignore_eos",
    "logprobs",
    "skip_special_tokens",
    "structured_outputs",
)
# Per-call options of a chat request besides the sampling ones.
CHAT_OPTIONS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "chat_template_kwargs",
    "tool_call_format",
    "reasoning",
)
# Per-call options of every generation request.
CALL_OPTIONS = (*SAMPLING_OPTIONS, "stop", "request_id")


class SamplingOptions(BaseModel):
    """Generation options; see the engine's ``SamplingParams`` for the exact semantics.

    Every field can be overridden per call (``llm.invoke(..., temperature=0.2)``,
    ``llm.chat(messages, max_tokens=32)``). A field left at ``None`` keeps the engine's
    default.
    """

    model_config = FIELD_CONFIG

    max_tokens: int | None = 256
    """Most tokens to generate per completion; ``None`` means up to the context length."""

    temperature: float | None = None
    """Sampling temperature; ``0`` is greedy (deterministic). Engine default: 1.0."""

    top_p: float | None = None
    """Nucleus sampling: keep the smallest set of tokens whose probability sums to
    ``top_p``, in (0, 1]. Engine default: 1.0 (off)."""

    top_k: int | None = None
    """Keep only the ``top_k`` most likely tokens; ``0`` or ``-1`` disables. Engine default: off."""

    min_p: float | None = None
    """Drop tokens less likely than ``min_p`` times the most likely one, in [0, 1].
    Engine default: 0 (off)."""

    repetition_penalty: float | None = None
    """Penalty (> 0) on tokens already in the prompt or output; 1.0 is off."""

    presence_penalty: float | None = None
    """Penalty in [-2, 2] on tokens that already appeared in the output."""

    frequency_penalty: float | None = None
    """Penalty in [-2, 2] proportional to how often a token already appeared."""

    seed: int | None = None
    """Random seed, for reproducible sampling."""

    stop: list[str] | None = None
    """Strings that end generation (not included in the output). A ``stop`` given to a
    call replaces this list for that call."""

    stop_token_ids: list[int] | None = None
    """Token ids that end generation, besides the model's end-of-sequence token."""

    min_tokens: int | None = None
    """Generate at least this many tokens before stop strings or EOS can end generation."""

    ignore_eos: bool | None = None
    """Keep generating past the end-of-sequence token (benchmarks)."""

    include_stop_str_in_output: bool | None = None
    """Keep the matched stop string at the end of the output."""

    skip_special_tokens: bool | None = None
    """Leave special tokens out of the decoded text (engine default: True)."""

    logprobs: int | None = None
    """Return the chosen token's log-probability and the ``logprobs`` most likely
    alternatives at each step (0 to 20)."""

    n: int | None = None
    """Completions per request (streaming needs 1)."""

    structured_outputs: StructuredOutputsParams | None = None
    """Constrain every output (JSON schema, any JSON object, regex, choice, grammar); see
    ``StructuredOutputsParams``. Structured-output helpers set this per call."""

    def _extra_args(self) -> dict[str, Any]:
        """Free-form options for the engine (``SamplingParams.extra_args``, which served
        backends pass on to the server): the framework's own pass-through field."""
        return {}

    def _sampling_params(self, stop: list[str] | None, overrides: dict[str, Any]) -> SamplingParams:
        """SamplingParams from the fields, with per-call ``overrides`` (consumed) on top."""
        options: dict[str, Any] = {}
        extra = self._extra_args()
        if extra:
            options["extra_args"] = dict(extra)
        for name in SAMPLING_OPTIONS:
            value = overrides.pop(name) if name in overrides else getattr(self, name)
            if value is not None or name == "max_tokens":
                options[name] = value
        if isinstance(options.get("structured_outputs"), dict):
            options["structured_outputs"] = StructuredOutputsParams(**options["structured_outputs"])
        stop = overrides.pop("stop", stop)
        if stop is None:
            stop = self.stop
        if stop:
            options["stop"] = list(stop)
        return SamplingParams(**options)

    def _completion_request(
        self, options: dict[str, Any], stop: list[str] | None = None
    ) -> dict[str, Any]:
        """``engine.stream`` keyword arguments (besides the prompt) from the fields and a
        call's ``options``; an option nobody knows raises ``UnknownOptionError``."""
        options = dict(options)
        request = self._take_common(options, stop)
        UnknownOptionError.check(f"{type(self).__name__} calls", options, CALL_OPTIONS)
        return request

    def _take_common(self, options: dict[str, Any], stop: list[str] | None) -> dict[str, Any]:
        return {
            "params": self._sampling_params(stop, options),
            # A caller-chosen id (unique among requests in flight) lets it abort the request.
            "request_id": options.pop("request_id", None),
        }


class ChatOptions(SamplingOptions):
    """``SamplingOptions`` plus what a chat request adds: template variables and tools."""

    chat_template_kwargs: dict[str, Any] | None = None
    """Extra variables for the model's chat template (for example ``enable_thinking``)."""

    parallel_tool_calls: bool | None = None
    """``False``: at most one tool call per turn (generation ends after it). ``None`` or
    ``True``: the model may make several calls in one turn. Also a per-call option."""

    tool_call_format: str | None = None
    """The model's tool-call syntax, as vLLM names its parsers: ``"hermes"``,
    ``"llama3_json"``, ``"mistral"``, ``"qwen3_xml"``. ``None`` (the default) reads it from
    the chat template (and uses Hermes' ``<tool_call>`` tags, with a tool prompt of ours,
    for templates that render no tools). Also a per-call option."""

    reasoning: bool | str | None = None
    """Thinking models: ``True`` / ``False`` turns reasoning on or off, an effort level
    (``"low"``, ``"medium"``, ``"high"``) sets it, on the chat template's own switch
    (``enable_thinking``, ``thinking``, ``reasoning_effort``). ``None`` (the default) keeps
    the template's default. What the template cannot express is refused. The reasoning
    comes back apart from the answer. Also a per-call option."""

    force_tool_call_on_user_turn: bool | None = None
    """When tools are offered without a ``tool_choice``, require a tool call while the
    conversation ends with a user message, and let the model answer freely once it ends
    with a tool result. ``None`` (the default) does so for models whose chat template
    renders no tools (like the 135M default): they were not trained to decide when to call
    one and almost never do, which leaves agent loops without a single call. An explicit
    ``tool_choice`` always wins."""

    def _forces_calls(
        self, engine: AsyncEngine, chat_template_kwargs: dict[str, Any] | None = None
    ) -> bool:
        """Whether ``force_tool_call_on_user_turn`` is on for the template a request renders
        with (``engine``'s model's, unless ``chat_template_kwargs`` names another)."""
        force = self.force_tool_call_on_user_turn
        return not engine.renders_tools(chat_template_kwargs) if force is None else force

    def _chat_request(
        self,
        options: dict[str, Any],
        engine: AsyncEngine,
        *,
        ends_with_user: bool,
        stop: list[str] | None = None,
    ) -> dict[str, Any]:
        """``engine.stream`` keyword arguments (besides the messages) from the fields and a
        call's ``options``; an option nobody knows raises ``UnknownOptionError``.
        ``ends_with_user``: the conversation ends with the user's message."""
        options = dict(options)
        request = self._take_common(options, stop)
        tools = options.pop("tools", None) or None
        tool_choice = options.pop("tool_choice", None)
        template_kwargs = options.pop("chat_template_kwargs", self.chat_template_kwargs)
        if (
            tools
            and tool_choice is None
            and ends_with_user
            and self._forces_calls(engine, template_kwargs)
        ):
            tool_choice = "required"
        parallel = options.pop("parallel_tool_calls", self.parallel_tool_calls)
        request.update(
            tools=tools,
            tool_choice=tool_choice,
            # None (unset) is the engine's default: several calls per turn allowed.
            parallel_tool_calls=True if parallel is None else parallel,
            chat_template_kwargs=template_kwargs,
            tool_call_format=options.pop("tool_call_format", self.tool_call_format),
            reasoning=options.pop("reasoning", self.reasoning),
        )
        known = CALL_OPTIONS + CHAT_OPTIONS
        UnknownOptionError.check(f"{type(self).__name__} calls", options, known)
        return request


__all__ = ["CALL_OPTIONS", "CHAT_OPTIONS", "SAMPLING_OPTIONS", "ChatOptions", "SamplingOptions"]
