"""Fields both frameworks' adapters declare, defined once: engine choice and request options.

LangChain's ``FuriosaChat`` / ``FuriosaLLM`` / ``FuriosaEmbeddings`` and LlamaIndex's
``FuriosaLLM`` / ``FuriosaEmbedding`` inherit these pydantic mixins, so each field has one
name, one description and one mapping onto the engine in both frameworks:

    RefusesUnknownArguments   a misspelt argument is an UnknownOptionError, not ignored
    EngineChoice     model, backend, device, dtype, engine  ->  composition.lease_engine
                     (+ base_url, api_key, headers, timeout, served_model_name: a server);
                     close() / ``with`` lets go of the engine
    SamplingOptions  sampling fields (+ per-call overrides) ->  SamplingParams, and the
                     arguments of a completion request      ->  engine.stream(prompt, ...)
    ChatOptions      SamplingOptions + template and tool options -> engine.stream(messages=...)
"""

from __future__ import annotations

import os
import weakref
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr
from typing_extensions import Self

from .composition import EngineLease, default_model_name, lease_engine
from .core import AsyncEngine, SamplingParams, StructuredOutputsParams, Task
from .errors import UnknownOptionError

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

_CONFIG = ConfigDict(
    arbitrary_types_allowed=True, protected_namespaces=(), use_attribute_docstrings=True
)


class RefusesUnknownArguments:
    """The first base of every adapter class: an argument that is no field raises
    ``UnknownOptionError`` naming the closest field (``temprature`` -> ``temperature``),
    instead of being dropped the way pydantic drops extras by default."""

    model_fields: ClassVar[dict[str, Any]]

    def __init__(self, **data: Any) -> None:
        self._check_arguments(data)
        super().__init__(**data)

    @classmethod
    def _known_arguments(cls) -> set[str]:
        names = set(cls.model_fields)
        names.update(f.alias for f in cls.model_fields.values() if getattr(f, "alias", None))
        return names

    @classmethod
    def _check_arguments(cls, data: dict[str, Any]) -> None:
        UnknownOptionError.check(cls.__name__, data, cls._known_arguments())


def _from_env(name: str) -> str | None:
    return os.environ.get(name) or None


def _secret_from_env(name: str) -> SecretStr | None:
    value = _from_env(name)
    return SecretStr(value) if value else None


_TASK_KINDS = {"generate": "a generation", "embed": "an embedding", "score": "a scoring"}


class EngineChoice(BaseModel):
    """Which engine an adapter talks to: the model, backend, device and dtype fields, or an
    explicit ``engine``. Subclasses set ``_task``.

    Engines are shared: every adapter asking for the same model, backend, device and dtype
    holds a lease on one loaded engine. ``close()`` (or leaving a ``with`` block, or the
    adapter being garbage collected) lets go of this adapter's; the last one let go frees
    the engine. An ``engine`` passed in belongs to the caller and is left running.
    """

    model_config = _CONFIG

    model: str | None = None
    """Model to serve: a local transformers model directory or ``.gguf`` file.

    ``None`` (the default) uses the bundled default model of the class's task
    (SmolLM2-135M-Instruct for generation, all-MiniLM-L6-v2 for embeddings). Nothing is
    ever downloaded."""

    backend: str = "auto"
    """``"auto"`` (the furiosa backend on an RNGD machine, torch otherwise), ``"torch"`` or
    ``"furiosa"``."""

    device: str | None = None
    """Device for the torch backend (``"cpu"``, ``"cuda"``, ``"cuda:1"``) or the NPU for the
    furiosa backend; ``None`` picks one."""

    dtype: str | None = None
    """Compute precision on the torch backend: ``"float32"`` or ``"bfloat16"``. ``None``
    picks: chat models fp32 on CPU and bf16 on CUDA; embedding models bf16 matmuls on CPUs
    with AMX and on CUDA, fp32 elsewhere."""

    base_url: str | None = Field(default_factory=lambda: _from_env("FURIOSA_BASE_URL"))
    """An OpenAI-compatible server to run on instead of in-process (``furiosa-llm serve``,
    vLLM, a load balancer or ``furiosa-llm route`` in front of them), e.g.
    ``"http://localhost:8000/v1"``. Default: ``$FURIOSA_BASE_URL``. Templates, tool calls,
    structured output, stop strings and detokenization still run here; ``model`` then
    names a local copy of the served model's tokenizer (or the served name)."""

    api_key: SecretStr | None = Field(default_factory=lambda: _secret_from_env("FURIOSA_API_KEY"))
    """The server's API key (sent as ``Authorization: Bearer``). Default:
    ``$FURIOSA_API_KEY``. Never shown in reprs, logs, errors or traces."""

    headers: dict[str, str] | None = Field(default=None, repr=False)
    """Extra HTTP headers for every request to ``base_url``."""

    timeout: float | None = 600.0
    """Seconds to wait for the server to connect, answer, or send each next token
    (``None``: no limit). Only with ``base_url``."""

    served_model_name: str | None = None
    """The name the server knows the model by (``--served-model-name``); ``None`` reads
    it from the server's ``/v1/models`` when it serves one model."""

    max_retries: int = 2
    """Retries of a request to ``base_url`` where nothing can be answered twice: the
    connection failed, or the server refused with 429/503 before any token."""

    engine: AsyncEngine | None = Field(default=None, exclude=True)
    """The engine serving this adapter: loaded from the fields above on first use, or given
    (for example one shared with other code), and then the fields above are not used."""

    _task: ClassVar[Task] = "generate"
    # This adapter's leases, by model (a per-call ``model=`` override takes one too).
    _leases: dict[str | None, EngineLease] = PrivateAttr(default_factory=dict)

    def _get_engine(self, model: str | None = None) -> AsyncEngine:
        """The engine for this adapter (loaded on first use, then kept in ``engine``), or
        for ``model`` when a call overrides it."""
        if model is not None and model != self.model:
            return self._load(model)
        if self.engine is None:
            self.engine = self._load(self.model)
            self._engine_loaded(self.engine)
        elif self.engine.task != self._task:
            raise ValueError(
                f"{self.engine.model_name} is not {_TASK_KINDS[self._task]} model "
                f"(task={self.engine.task!r})"
            )
        return self.engine

    def _engine_loaded(self, engine: AsyncEngine) -> None:
        """Called once the adapter's own engine is loaded (LangChain's profile is filled)."""

    def _load(self, model: str | None) -> AsyncEngine:
        remote: dict[str, Any] = {}
        if self.base_url is not None or self.backend == "remote":
            remote = {
                "base_url": self.base_url,
                "api_key": self.api_key.get_secret_value() if self.api_key else None,
                "headers": self.headers,
                "timeout": self.timeout,
                "served_model_name": self.served_model_name,
                "max_retries": self.max_retries,
            }
        lease = self._leases.get(model)
        if lease is not None and not lease.released and lease.engine.is_alive():
            return lease.engine
        if not self._leases:  # the first lease: let go of them all when collected
            weakref.finalize(self, _release_all, self._leases)
        lease = lease_engine(
            model,
            task=self._task,
            backend=self.backend,
            device=self.device,
            dtype=self.dtype,
            **remote,
        )
        self._leases[model] = lease
        return lease.engine

    def close(self) -> None:
        """Let go of this adapter's engine: the last adapter to do so frees it (its memory
        and threads). A later call loads it again. An ``engine`` passed in is not touched."""
        leased = {id(lease.engine) for lease in self._leases.values()}
        _release_all(self._leases)
        if self.engine is not None and id(self.engine) in leased:
            self.engine = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _model_label(self, model: Any = None) -> str:
        """The model's name for traces, without loading anything."""
        if isinstance(model, str) and model:
            return model
        if self.engine is not None:
            return self.engine.model_name
        return self.model or self.served_model_name or default_model_name(self._task)


def _release_all(leases: dict[str | None, EngineLease]) -> None:
    for lease in list(leases.values()):
        lease.release()
    leases.clear()


class SamplingOptions(BaseModel):
    """Generation options; see the engine's ``SamplingParams`` for the exact semantics.

    Every field can be overridden per call (``llm.invoke(..., temperature=0.2)``,
    ``llm.chat(messages, max_tokens=32)``). A field left at ``None`` keeps the engine's
    default.
    """

    model_config = _CONFIG

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


__all__ = [
    "CALL_OPTIONS",
    "CHAT_OPTIONS",
    "SAMPLING_OPTIONS",
    "ChatOptions",
    "EngineChoice",
    "RefusesUnknownArguments",
    "SamplingOptions",
]
