"""Structured-output constraints for the torch engine, compiled with xgrammar.

``GrammarConstraints`` is the engine's ``constraint_factory``: it turns a request's
``StructuredOutputsParams`` into a ``GrammarConstraint`` (one xgrammar matcher per
request; ``grammar_constraint``). Compiled grammars are cached per constraint, so the
check before queuing and every later request with the same schema compile it once. Masks
are written into one packed bitmask per batch step (``fill_bitmask``) and applied to all
constrained rows in a single call: unpacking a 49k-token mask per row in torch costs
milliseconds, the packed path microseconds.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from ...core import SamplingParams, StructuredOutputsParams
from ...core.structured_outputs import check_json_schema
from ...errors import InvalidRequestError
from ...models.tokenizer import load_transformers_tokenizer
from .grammar_closing import CompletionPlanner
from .grammar_constraint import GrammarConstraint

_MAX_CACHED_GRAMMARS = 256
# xgrammar's own maxLength makes masks slow (tens of ms per token on a CPU), while the
# same bound as a regex character class costs microseconds. Regex repetition above ~128
# fails to compile in xgrammar 0.2.x, so only bounds up to this are rewritten.
_MAX_REWRITTEN_LENGTH = 64
_PLAIN_CHAR = r'[^"\\\x00-\x1f]'  # a JSON string character that needs no escape
_NOT_SCHEMAS = ("default", "examples", "enum", "const")
# A compiled grammar, its shortest completion's length and the tags closing its free text.
_Compiled = tuple[Any, int | None, tuple[str, ...]]


def _canonical(value: Any) -> str:
    """A stable cache key for a schema / tag given as a dict or a JSON string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    # xgrammar prefixes C++ messages with "[time] file.cc:line: "; keep only the message.
    if text.startswith("[") and ".cc:" in text:
        text = text.split(": ", 1)[-1]
    return text


def fast_string_bounds(node: Any) -> Any:
    """A copy of a JSON schema with short ``maxLength`` strings as equivalent patterns.

    ``{"type": "string", "minLength": a, "maxLength": b}`` (b <= 64, no pattern or format)
    becomes a ``pattern`` of a to b characters that need no escaping: the same lengths,
    written without escape sequences (no quotes, backslashes or control characters).
    """
    if isinstance(node, list):
        return [fast_string_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: value if key in _NOT_SCHEMAS else fast_string_bounds(value)
        for key, value in node.items()
    }
    high = out.get("maxLength")
    low = out.get("minLength", 0)
    if (
        out.get("type") == "string"
        and isinstance(high, int)
        and isinstance(low, int)
        and 0 <= low <= high <= _MAX_REWRITTEN_LENGTH
        and not any(k in out for k in ("pattern", "format", "enum", "const"))
    ):
        del out["maxLength"]
        out.pop("minLength", None)
        out["pattern"] = f"^{_PLAIN_CHAR}{{{low},{high}}}$"
    return out


def _fast_tag_schemas(node: Any) -> Any:
    """``fast_string_bounds`` applied to every json_schema inside a structural tag."""
    if isinstance(node, list):
        return [_fast_tag_schemas(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _fast_tag_schemas(value) for key, value in node.items()}
    if out.get("type") == "json_schema" and isinstance(node.get("json_schema"), dict):
        out["json_schema"] = fast_string_bounds(node["json_schema"])
    return out


def free_text_closers(node: Any) -> tuple[str, ...]:
    """The ``end`` of every tag of a structural tag whose content is free text (a reasoning
    section's ``</think>``): the completion planner's way out of that text."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            content = value.get("content")
            end = value.get("end")
            if isinstance(content, dict) and content.get("type") == "any_text":
                found.extend([end] if isinstance(end, str) else end or [])
            for item in value.values():
                walk(item)

    walk(node)
    return tuple(dict.fromkeys(e for e in found if e))


def choice_grammar(choices: list[str]) -> str:
    """EBNF accepting exactly one of ``choices`` (JSON string escapes are valid EBNF escapes)."""
    return "root ::= " + " | ".join(json.dumps(c, ensure_ascii=False) for c in choices)


def structural_tag_json(tag: str | dict[str, Any]) -> str:
    """xgrammar's structural-tag JSON; vLLM's legacy ``{"structures", "triggers"}`` is converted."""
    value = json.loads(tag) if isinstance(tag, str) else tag
    if isinstance(value, dict) and "structures" in value:
        return json.dumps(
            {
                "type": "structural_tag",
                "format": {
                    "type": "triggered_tags",
                    "triggers": value.get("triggers", []),
                    "tags": [
                        {
                            "type": "tag",
                            "begin": s["begin"],
                            "content": {"type": "json_schema", "json_schema": s.get("schema", {})},
                            "end": s["end"],
                        }
                        for s in value["structures"]
                    ],
                },
            }
        )
    return json.dumps(value)


class GrammarConstraints:
    """The torch engine's constraint factory and pre-queue checker, for one model.

    The tokenizer's vocabulary is read on first use (most requests are unconstrained).
    ``vocab_size`` is the model's (its logits width), which may exceed the tokenizer's.
    """

    def __init__(
        self,
        tokenizer_path: str | Path,
        vocab_size: int,
        stop_token_ids: frozenset[int] | set[int] | list[int],
        *,
        max_cached: int = _MAX_CACHED_GRAMMARS,
    ) -> None:
        self.tokenizer_path = Path(tokenizer_path)
        self.vocab_size = vocab_size
        self.stop_token_ids = sorted(stop_token_ids)
        self.max_cached = max_cached
        self._lock = threading.Lock()
        self._compiler: Any = None
        self._planner: CompletionPlanner | None = None
        # Compiled grammars, with the tokens their shortest completion takes from the start
        # and the tags that close their free text.
        self._cache: OrderedDict[tuple[str, str], _Compiled] = OrderedDict()

    # ---- compiling ----

    def _get_compiler(self) -> Any:
        with self._lock:
            if self._compiler is None:
                import xgrammar as xgr

                tokenizer = load_transformers_tokenizer(self.tokenizer_path)
                info = xgr.TokenizerInfo.from_huggingface(
                    tokenizer, vocab_size=self.vocab_size, stop_token_ids=self.stop_token_ids
                )
                self._planner = CompletionPlanner(info.decoded_vocab, info.special_token_ids)
                self._compiler = xgr.GrammarCompiler(info, max_threads=2)
            return self._compiler

    def compile(self, structured: StructuredOutputsParams) -> _Compiled:
        """The compiled grammar for ``structured`` (cached), the tokens its shortest
        completion takes from the start (``None``: none found) and the tags that close
        its free text; InvalidRequestError if the constraint is invalid."""
        structured.verify()
        kind = structured.kind()
        value = getattr(structured, kind)
        canonical = kind in ("json", "structural_tag", "choice")
        key = (kind, _canonical(value) if canonical else str(value))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        compiled = self._compile_uncached(structured, kind)
        import xgrammar as xgr

        assert self._planner is not None  # made with the compiler
        closers = (
            free_text_closers(json.loads(structural_tag_json(value)))
            if kind == "structural_tag"
            else ()
        )
        plan = self._planner.plan(xgr.GrammarMatcher(compiled), closers=closers)
        entry = (compiled, None if plan is None else len(plan), closers)
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return entry

    def _compile_uncached(self, structured: StructuredOutputsParams, kind: str) -> Any:
        compiler = self._get_compiler()
        if kind == "json":
            schema = structured.json_schema()
            check_json_schema(schema, "structured_outputs.json")
        try:
            if kind == "json":
                # Compact JSON: a small model given free whitespace can loop on newlines.
                fast = fast_string_bounds(schema)
                return compiler.compile_json_schema(json.dumps(fast), any_whitespace=False)
            if kind == "json_object":
                return compiler.compile_json_schema('{"type": "object"}', any_whitespace=False)
            if kind == "regex":
                return compiler.compile_regex(structured.regex)
            if kind == "choice":
                return compiler.compile_grammar(choice_grammar(list(structured.choice or [])))
            if kind == "grammar":
                return compiler.compile_grammar(structured.grammar)
            tag = structural_tag_json(structured.structural_tag)  # type: ignore[arg-type]
            return compiler.compile_structural_tag(json.dumps(_fast_tag_schemas(json.loads(tag))))
        except InvalidRequestError:
            raise
        except Exception as exc:  # xgrammar raises RuntimeError / ValueError / pydantic errors
            raise InvalidRequestError(
                f"structured_outputs.{kind} is invalid: {_first_line(exc)}"
            ) from exc

    # ---- the engine hooks ----

    def check(self, params: SamplingParams) -> None:
        """Compile now, so an invalid schema, regex or grammar fails before queuing, and
        refuse a budget too small for the shortest complete output."""
        if params.structured_outputs is None:
            return
        _, shortest, _ = self.compile(params.structured_outputs)
        if shortest is not None and params.max_tokens is not None and shortest > params.max_tokens:
            raise InvalidRequestError(
                f"structured_outputs.{params.structured_outputs.kind()} needs about {shortest} "
                f"tokens for its shortest complete output, more than max_tokens="
                f"{params.max_tokens}; raise max_tokens"
            )

    def __call__(self, params: SamplingParams) -> GrammarConstraint | None:
        if params.structured_outputs is None:
            return None
        import xgrammar as xgr

        compiled, shortest, closers = self.compile(params.structured_outputs)
        stops = set() if params.ignore_eos else set(self.stop_token_ids)
        stops |= set(params.stop_token_ids or ())
        matcher = xgr.GrammarMatcher(compiled, override_stop_tokens=sorted(stops) or None)
        assert self._planner is not None
        return GrammarConstraint(matcher, self._planner, sorted(stops), shortest or 0, closers)


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor, rows: list[int]) -> None:
    """Set ``logits[row, token]`` to -inf wherever the packed ``bitmask[row]`` bit is 0."""
    import xgrammar as xgr

    if logits.device.type == "cpu":
        xgr.apply_token_bitmask_inplace(logits, bitmask, vocab_size=logits.shape[-1], indices=rows)
    else:
        xgr.apply_token_bitmask_inplace(
            logits,
            bitmask.to(logits.device, non_blocking=True),
            vocab_size=logits.shape[-1],
            indices=rows,
            backend="torch_native",  # no triton needed
        )


__all__ = ["GrammarConstraints", "apply_bitmask"]
