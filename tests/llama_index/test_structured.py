"""Structured output: structured_predict (sync, async, both streams) and as_structured_llm
on the engine's JSON-schema constraint, for a nested Pydantic model."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.types import PydanticProgramMode
from pydantic import BaseModel

from furiosa_integrations.llama_index import FuriosaLLM

pytestmark = pytest.mark.models  # every test here loads a model


class Address(BaseModel):
    city: str
    country: str


class Person(BaseModel):
    name: str
    age: int
    address: Address


PROMPT = PromptTemplate("Extract the person from this text: {text}")
ALICE = Person(name="Alice", age=30, address=Address(city="Paris", country="France"))
ALICE_TEXT = "Alice is 30 years old and lives in Paris, France."
BOB_TEXT = "Bob is 42 and lives in Berlin, Germany."
BOB = Person(name="Bob", age=42, address=Address(city="Berlin", country="Germany"))


@pytest.fixture(scope="module")
def extractor() -> FuriosaLLM:
    return FuriosaLLM(temperature=0.0, max_tokens=64)


async def test_structured_predict_sync_and_async(extractor: FuriosaLLM) -> None:
    sync_result, async_result = await asyncio.gather(
        asyncio.to_thread(extractor.structured_predict, Person, PROMPT, text=ALICE_TEXT),
        extractor.astructured_predict(Person, PROMPT, text=BOB_TEXT),
    )
    assert isinstance(sync_result, Person) and isinstance(sync_result.address, Address)
    assert sync_result == ALICE
    assert async_result == BOB


async def test_streamed_structured_predict(extractor: FuriosaLLM) -> None:
    def sync_parts() -> list[object]:
        return list(extractor.stream_structured_predict(Person, PROMPT, text=ALICE_TEXT))

    async def async_parts() -> list[object]:
        stream = await extractor.astream_structured_predict(Person, PROMPT, text=BOB_TEXT)
        return [part async for part in stream]

    parts, aparts = await asyncio.gather(asyncio.to_thread(sync_parts), async_parts())
    assert parts[-1] == ALICE and aparts[-1] == BOB
    for stream in (parts, aparts):
        assert len(stream) > 5  # partial objects while the JSON grows
        assert not isinstance(stream[0], Person)  # the first ones are still partial


async def test_as_structured_llm(extractor: FuriosaLLM) -> None:
    structured = extractor.as_structured_llm(Person)
    messages = [ChatMessage(role="user", content=f"Extract the person: {BOB_TEXT}")]
    response, aresponse = await asyncio.gather(
        asyncio.to_thread(structured.chat, messages), structured.achat(messages)
    )
    for r in (response, aresponse):
        assert r.raw == BOB
        assert Person.model_validate_json(r.message.content or "") == BOB


def test_a_short_budget_gives_a_valid_object_or_a_clear_error(
    extractor: FuriosaLLM, caplog: pytest.LogCaptureFixture
) -> None:
    # Too small for any complete Person: refused before queuing, naming the budget.
    with pytest.raises(ValueError, match="max_tokens=5"):
        extractor.structured_predict(Person, PROMPT, llm_kwargs={"max_tokens": 5}, text=ALICE_TEXT)
    # Too small for the whole answer: completed in time, valid, and the log says so.
    with caplog.at_level("WARNING"):
        cut = extractor.structured_predict(
            Person, PROMPT, llm_kwargs={"max_tokens": 28}, text=ALICE_TEXT
        )
    assert isinstance(cut, Person) and "completed early" in caplog.text


def test_function_program_mode_goes_through_tool_calling() -> None:
    llm = FuriosaLLM(
        temperature=0.0, max_tokens=64, pydantic_program_mode=PydanticProgramMode.FUNCTION
    )
    assert llm.structured_predict(Person, PROMPT, text=BOB_TEXT) == BOB
