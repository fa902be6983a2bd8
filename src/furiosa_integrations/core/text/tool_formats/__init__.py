"""Tool-call formats, one module per model family; ``registry`` names and detects them."""

from .base import ToolCallFormat, Trigger
from .registry import DEFAULT_FORMAT, FORMATS, detect_format, format_named

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "ToolCallFormat",
    "Trigger",
    "detect_format",
    "format_named",
]
