"""The tool-call formats by name, and which one a chat template writes.

To add a family: a module with its ``ToolCallFormat`` beside this one, and a line in
``FORMATS``. Detection tries them in order (the more specific syntax first: Qwen3's XML
calls also sit in ``<tool_call>`` tags).
"""

from __future__ import annotations

from ....errors import InvalidRequestError
from .base import ToolCallFormat
from .hermes import Hermes
from .llama3_json import Llama3Json
from .mistral import Mistral
from .qwen3_xml import Qwen3Xml

FORMATS: dict[str, type[ToolCallFormat]] = {
    fmt.name: fmt for fmt in (Qwen3Xml, Mistral, Hermes, Llama3Json)
}
# Our own tool prompt writes calls this way (templates that render no tools).
DEFAULT_FORMAT = Hermes


def detect_format(template: str) -> ToolCallFormat | None:
    """The format a chat template that renders tools writes calls in; None when it names
    none of ours (then our prompt describes the Hermes format)."""
    for fmt in FORMATS.values():
        if fmt.matches(template):
            return fmt.for_template(template)
    return None


def format_named(name: str, template: str = "") -> ToolCallFormat:
    """The format called ``name`` (vLLM's parser names), as ``template`` spells it."""
    fmt = FORMATS.get(name) if isinstance(name, str) else None
    if fmt is None:
        raise InvalidRequestError(
            f"tool_call_format {name!r} is not one of the known formats {sorted(FORMATS)}"
        )
    return fmt.for_template(template)


__all__ = ["DEFAULT_FORMAT", "FORMATS", "detect_format", "format_named"]
