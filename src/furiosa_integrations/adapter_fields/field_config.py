"""The pydantic settings every shared field mixin uses (and the adapters inherit)."""

from pydantic import ConfigDict

# Attribute docstrings become field descriptions (LangChain's convention; LlamaIndex
# shows them too); ``model_*`` names (``model``) are fields, not pydantic internals.
FIELD_CONFIG = ConfigDict(
    arbitrary_types_allowed=True, protected_namespaces=(), use_attribute_docstrings=True
)
