"""The torch engine's own forward passes against transformers' reference models.

The engine reads weights straight from the checkpoint and runs its own decoder and
encoder forwards (no transformers modeling code at start-up). These tests load the
same default models through transformers and compare logits and pooled vectors.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from furiosa_integrations.backends.torch.decoders import PrefillSegment, load_decoder
from furiosa_integrations.backends.torch.device import pick_encoder_dtype
from furiosa_integrations.backends.torch.encoder import BertEncoder
from furiosa_integrations.backends.torch.loader import read_config
from furiosa_integrations.engine import AsyncEngine, PoolingParams
from furiosa_integrations.models.resolve import default_embedding_dir, resolve_model

pytestmark = pytest.mark.models  # every test here loads a model

PROMPT = [1, 504, 3458, 282, 4649, 314, 1345, 28, 253, 99, 1000, 2000]


@pytest.fixture(scope="module")
def chat_path() -> Path:
    return Path(resolve_model(None, "generate").path)


def test_decoder_logits_match_transformers(chat_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    reference: Any = AutoModelForCausalLM.from_pretrained(str(chat_path), dtype=torch.float32)
    decoder = load_decoder(
        chat_path, read_config(chat_path), torch.device("cpu"), torch.float32, 64
    )
    assert decoder.native and decoder.family == "llama"
    decoder.cache.ensure(1, 32)
    ids = torch.tensor(PROMPT)
    logits = decoder.prefill(ids, [PrefillSegment(slot=0, start=0, length=len(ids), position=0)])
    with torch.inference_mode():
        expected = reference(ids[None]).logits[0, -1]
    assert (logits[0] - expected).abs().max().item() < 1e-3
    following = expected.argmax()
    step = decoder.decode(following.view(1), torch.tensor([len(ids)]))
    with torch.inference_mode():
        expected = reference(torch.cat([ids, following.view(1)])[None]).logits[0, -1]
    assert (step[0] - expected).abs().max().item() < 1e-3
    assert step[0].argmax() == expected.argmax()


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)


def test_encoder_matches_transformers_in_fp32_and_bf16() -> None:
    from transformers import AutoModel

    path = default_embedding_dir()
    reference: Any = AutoModel.from_pretrained(str(path), dtype=torch.float32).eval()
    ids = torch.randint(1000, 20000, (4, 40))
    mask = torch.ones_like(ids)
    mask[1:, 25:] = 0  # padded rows
    with torch.inference_mode():
        expected = _mean_pool(reference(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
    exact = BertEncoder(path, read_config(path), torch.device("cpu"), torch.float32)
    assert (_mean_pool(exact(ids, mask), mask) - expected).abs().max().item() < 1e-5
    fast = BertEncoder(path, read_config(path), torch.device("cpu"), torch.bfloat16)
    cosine = torch.nn.functional.cosine_similarity(_mean_pool(fast(ids, mask), mask), expected)
    assert cosine.min().item() > 0.9995


async def test_default_embeddings_stay_close_to_fp32(embed_engine: AsyncEngine) -> None:
    """The default engine may run bf16 matmuls (AMX CPUs, CUDA); its vectors stay within
    1e-3 cosine of an fp32 engine's, which both frameworks' adapters ask for with dtype."""
    from furiosa_integrations import FuriosaEmbeddings
    from furiosa_integrations.llama_index import FuriosaEmbedding

    texts = ["Paris is the capital of France.", "RNGD is an NPU made by FuriosaAI. " * 8]
    native = embed_engine.native
    assert native.dtype == pick_encoder_dtype(native.device, None)  # type: ignore[attr-defined]
    langchain = FuriosaEmbeddings(dtype="float32")
    fp32 = await langchain.aembed_documents(texts)
    exact = langchain._get_engine()
    assert exact is not embed_engine and exact.native.dtype == torch.float32  # type: ignore[attr-defined]
    assert FuriosaEmbedding(dtype="float32").engine is exact  # one shared fp32 engine
    assert FuriosaEmbeddings()._get_engine() is embed_engine
    default = await embed_engine.embed(texts, PoolingParams())
    for a, b in zip(fp32, default, strict=True):
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        assert math.isclose(dot, 1.0, abs_tol=1e-3)


def test_engine_start_up_does_not_import_transformers() -> None:
    """Cold start: the default chat and embedding engines load, render a chat prompt and
    answer without importing transformers at all (its modeling stack alone is seconds)."""
    code = (
        "import sys\n"
        "from furiosa_integrations.engine import SamplingParams, get_engine\n"
        "chat = get_engine(task='generate')\n"
        "params = SamplingParams(max_tokens=2, temperature=0)\n"
        "chat.generate_sync(messages=[{'role': 'user', 'content': 'hi'}], params=params)\n"
        "get_engine(task='embed').embed_sync(['hi'])\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] == 'transformers'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LOADED []" in result.stdout, result.stdout


def test_encoder_keeps_fp32_where_aten_is_held_to_avx2() -> None:
    """``ATEN_CPU_CAPABILITY=avx2`` runs an AVX-512 CPU as an AVX2-only one, which has no
    native bf16 math: the default encoder dtype is fp32 there, whatever the CPU could do."""
    code = (
        "import torch\n"
        "from furiosa_integrations.backends.torch.device import pick_encoder_dtype\n"
        "capability = torch.backends.cpu.get_cpu_capability()\n"
        "print(capability, pick_encoder_dtype(torch.device('cpu'), None))"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    capability, dtype = out.stdout.split()
    if capability != "AVX2":  # a CPU without AVX2 stays below it
        pytest.skip(f"ATen runs at {capability} here")
    assert dtype == "torch.float32"
