"""``with_structured_output`` for ``FuriosaChat``: a constrained request plus a parser.

- ``json_schema`` (default): the engine constrains decoding to the schema
  (``StructuredOutputsParams(json=...)``), so even a small model returns a valid object.
- ``function_calling``: the schema becomes a tool the model is forced to call.
- ``json_mode``: the prompt says which keys to use; the output is constrained to a JSON
  object, and to the schema's when one is given (so it parses into it).
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, cast

from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic.v1 import BaseModel as BaseModelV1

from ..core import StructuredOutputsParams
from ..errors import InvalidRequestError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

Method = Literal["json_schema", "function_calling", "json_mode"]


def _is_pydantic_class(schema: Any) -> bool:
    return isinstance(schema, type) and is_basemodel_subclass(schema)


def _json_schema(schema: Any) -> dict[str, Any]:
    """The JSON schema of a Pydantic class (v1 or v2), a TypedDict or a JSON schema dict."""
    if _is_pydantic_class(schema):
        if issubclass(schema, BaseModelV1):
            return cast(dict[str, Any], schema.schema())
        return cast(dict[str, Any], schema.model_json_schema())
    return convert_to_json_schema(schema)


def response_format_outputs(response_format: Any) -> StructuredOutputsParams | None:
    """OpenAI's ``response_format`` call option (what LangChain agents' ``ProviderStrategy``
    binds) as the engine's constraint; ``{"type": "text"}`` is none."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequestError("response_format json_schema needs a 'schema' dict")
        return StructuredOutputsParams(json=schema)
    if kind == "json_object":
        return StructuredOutputsParams(json_object=True)
    if kind == "text":
        return None
    raise InvalidRequestError(
        f"response_format must be {{'type': 'json_schema' | 'json_object' | 'text', ...}}, "
        f"got {response_format!r}"
    )


def structured_output(
    model: BaseChatModel,
    schema: Any,
    *,
    method: Method = "json_schema",
    include_raw: bool = False,
) -> Runnable:
    """The runnable ``with_structured_output`` returns (see its docstring)."""
    is_pydantic = _is_pydantic_class(schema)
    # What tracing records (BaseChatModel pops it before the request is made).
    trace: dict[str, Any] = (
        {"ls_structured_output_format": {"kwargs": {"method": method}, "schema": schema}}
        if schema is not None
        else {}
    )
    if schema is None and method != "json_mode":
        raise ValueError(f"schema must be given for method={method!r}")
    if method == "function_calling":
        tool = convert_to_openai_tool(schema)
        name = tool["function"]["name"]
        llm: Runnable = model.bind_tools([schema], tool_choice=name, **trace)
        parser: Runnable = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)
            if is_pydantic
            else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        )
    elif method == "json_schema":
        llm = model.bind(
            structured_outputs=StructuredOutputsParams(json=_json_schema(schema)), **trace
        )
        parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
    elif method == "json_mode":
        # Any JSON object, or (with a schema to parse into) the schema's: the prompt names
        # the keys, but a small model does not always write them all.
        constraint = (
            StructuredOutputsParams(json=_json_schema(schema))
            if schema is not None
            else StructuredOutputsParams(json_object=True)
        )
        llm = model.bind(structured_outputs=constraint, **trace)
        parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
    else:
        raise ValueError(
            f"method must be 'json_schema', 'function_calling' or 'json_mode', got {method!r}"
        )
    if not include_raw:
        return llm | parser
    parse = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    no_parse = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parse.with_fallbacks([no_parse], exception_key="parsing_error")
