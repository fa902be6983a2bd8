"""Sampling fields shared by ``FuriosaChat`` and ``FuriosaLLM``, and the one place that maps
them (and their per-call overrides) to the engine's ``SamplingParams``.

Every field can be overridden per call: ``llm.invoke(..., temperature=0.2)`` or
``llm.bind(max_tokens=32)``. A field left at ``None`` keeps the engine's default.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ..engine import SamplingParams, StructuredOutputsParams

# Field names that map one-to-one onto SamplingParams options (``stop`` is handled apart).
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


class SamplingFields(BaseModel):
    """Generation options; see the engine's ``SamplingParams`` for the exact semantics."""

    model_config = ConfigDict(
        arbitrary_types_allowed=True, protected_namespaces=(), use_attribute_docstrings=True
    )

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
    alternatives at each step (0 to 20), in ``response_metadata["logprobs"]``."""

    n: int | None = None
    """Completions per request (``generate`` returns them all; streaming needs 1)."""

    structured_outputs: StructuredOutputsParams | None = None
    """Constrain every output (JSON schema, any JSON object, regex, choice, grammar); see
    ``StructuredOutputsParams``. ``with_structured_output`` sets this per call."""

    def _sampling_params(self, stop: list[str] | None, overrides: dict[str, Any]) -> SamplingParams:
        """SamplingParams from the fields, with per-call ``overrides`` (consumed) on top."""
        options: dict[str, Any] = {}
        for name in SAMPLING_OPTIONS:
            value = overrides.pop(name) if name in overrides else getattr(self, name)
            if value is not None or name == "max_tokens":
                options[name] = value
        if isinstance(options.get("structured_outputs"), dict):
            options["structured_outputs"] = StructuredOutputsParams(**options["structured_outputs"])
        if stop is None:
            stop = self.stop
        if stop:
            options["stop"] = list(stop)
        return SamplingParams(**options)

    def _ls_sampling(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The ``ls_*`` sampling entries of ``_get_ls_params``."""
        params: dict[str, Any] = {}
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        stop = stop if stop is not None else self.stop
        if stop:
            params["ls_stop"] = list(stop)
        return params


def check_streamable(params: SamplingParams) -> None:
    """A stream carries one completion; refuse ``n > 1`` before anything is queued."""
    if params.n != 1:
        raise ValueError(f"Streaming returns one completion per request; got n={params.n}")


def reject_unknown(kwargs: dict[str, Any], allowed: tuple[str, ...] = ()) -> None:
    """Raise on call options nobody consumed, so a typo does not pass silently."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(
            f"Unknown option(s) {unknown}; sampling options are {', '.join(SAMPLING_OPTIONS)}"
        )
