"""``FuriosaChat.profile``: LangChain's model profile, read off the loaded engine.

Everything here is a fact of the engine serving the model, not a table: the context
length is the engine's ``max_model_len`` (what a prompt plus its completion must fit),
images follow the backend's model, reasoning follows the chat template's thinking
section. Tool calls and structured output are constrained by the engine on every model.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import ModelProfile

from ..core import AsyncEngine


def model_profile(
    engine: AsyncEngine, chat_template_kwargs: dict[str, Any] | None = None
) -> ModelProfile:
    """The profile of the model ``engine`` serves, rendered with ``chat_template_kwargs``
    (a ``chat_template`` there replaces the model's)."""
    context = engine.max_model_len
    return ModelProfile(
        name=engine.model_name,
        # One context holds the prompt and the completion: a prompt may take all but one
        # token of it, and a completion all but the prompt's (at least one token).
        max_input_tokens=context,
        max_output_tokens=context - 1,
        text_inputs=True,
        text_outputs=True,
        image_inputs=engine.supports_images,
        # Images are read from base64 data, data URLs and local files; http(s) URLs are
        # refused (nothing is fetched at run time).
        image_url_inputs=False,
        pdf_inputs=False,
        audio_inputs=False,
        video_inputs=False,
        image_tool_message=False,
        pdf_tool_message=False,
        reasoning_output=engine.template_has_thinking(chat_template_kwargs),
        tool_calling=True,
        tool_choice=True,
        # Each call arrives whole in one tool_call_chunk (its arguments already parsed).
        tool_call_streaming=True,
        # Decoding constrained to the schema (with_structured_output, response_format).
        structured_output=True,
        temperature=True,
    )


__all__ = ["model_profile"]
