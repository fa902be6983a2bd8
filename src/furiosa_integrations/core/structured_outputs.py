"""Structured-output request options, in the shape of furiosa-llm's ``StructuredOutputsParams``.

Exactly one constraint may be set. The furiosa backend passes these through unchanged;
the torch backend compiles them with xgrammar (``backends/torch/grammar.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequestError


@dataclass
class StructuredOutputsParams:
    """Constrain generation to a JSON schema, any JSON object, a regex, a choice, a grammar
    or a structural tag. Field names follow furiosa-llm / vLLM."""

    json: str | dict[str, Any] | None = None
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None
    json_object: bool | None = None
    structural_tag: str | dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.verify()

    def kind(self) -> str:
        """The name of the one constraint that is set."""
        for name in ("json", "regex", "choice", "grammar", "json_object", "structural_tag"):
            if getattr(self, name) not in (None, False):
                return name
        raise InvalidRequestError("structured_outputs: no constraint is set")

    def verify(self) -> None:
        set_fields = [
            name
            for name in ("json", "regex", "choice", "grammar", "json_object", "structural_tag")
            if getattr(self, name) not in (None, False)
        ]
        if len(set_fields) != 1:
            raise InvalidRequestError(
                "structured_outputs: exactly one of json, regex, choice, grammar, json_object, "
                f"structural_tag must be set, got {set_fields or 'none'}"
            )
        if self.json is not None:
            if isinstance(self.json, str):
                try:
                    schema = json.loads(self.json)
                except json.JSONDecodeError as exc:
                    raise InvalidRequestError(
                        f"structured_outputs.json is not valid JSON: {exc}"
                    ) from exc
            else:
                schema = self.json
            if not isinstance(schema, dict):
                raise InvalidRequestError("structured_outputs.json must be a JSON schema object")
        if self.choice is not None:
            if not self.choice or not all(isinstance(c, str) for c in self.choice):
                raise InvalidRequestError(
                    "structured_outputs.choice must be a non-empty list of strings"
                )
        if self.regex is not None and not isinstance(self.regex, str):
            raise InvalidRequestError("structured_outputs.regex must be a string")
        if self.grammar is not None and not isinstance(self.grammar, str):
            raise InvalidRequestError("structured_outputs.grammar must be a string")

    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema as a dict, when ``json`` is set."""
        if self.json is None:
            return None
        return json.loads(self.json) if isinstance(self.json, str) else self.json


def check_json_schema(schema: Any, what: str) -> None:
    """Reject what is not a valid JSON schema (jsonschema's meta-schema check), naming ``what``."""
    import jsonschema

    if not isinstance(schema, dict):
        raise InvalidRequestError(
            f"{what} must be a JSON schema object, got {type(schema).__name__}"
        )
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidRequestError(f"{what} is not a valid JSON schema: {exc.message}") from exc
