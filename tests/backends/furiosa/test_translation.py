"""Our options and engine args translated to the real furiosa-llm package's objects.

Runs in .venv-furiosa, where furiosa-llm and its native wheel are installed (no NPU).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("furiosa_llm", reason="runs in .venv-furiosa (scripts/setup_furiosa_env.sh)")

import furiosa_llm
from furiosa_llm.api import NativeEngineLike, SchedulerConfig
from furiosa_llm.errors import ContextLengthExceededError as FuriosaContextLength
from furiosa_llm.outputs import RequestOutputKind as FuriosaKind
from furiosa_llm.sampling_params import PoolingParams as FuriosaPooling
from furiosa_llm.sampling_params import SamplingParams as FuriosaSampling
from furiosa_llm.sampling_params import StructuredOutputsParams as FuriosaStructured

from furiosa_integrations.backends.furiosa.error_translation import map_error
from furiosa_integrations.backends.furiosa.llm_loader import supports_images
from furiosa_integrations.backends.furiosa.param_translation import (
    to_furiosa_pooling_params,
    to_furiosa_sampling_params,
    to_furiosa_structured,
)
from furiosa_integrations.engine import (
    AsyncEngine,
    ContextLengthExceededError,
    EngineArgs,
    EngineDeadError,
    EngineError,
    InvalidRequestError,
    ModelNotFoundError,
    PoolingParams,
    RequestOutputKind,
    SamplingParams,
    StructuredOutputsParams,
    get_engine,
)
from furiosa_integrations.furiosa_llm_api.engine_from_args import engine_from_args, llm_kwargs
from furiosa_integrations.models.resolve import default_embedding_dir

from .conftest import StandInModelMetadata
from .stand_in import StandInNativeEngine

# ---- the stand-in follows the real protocol ----


def _params(fn: Any) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


def test_stand_in_follows_native_engine_like() -> None:
    members = [n for n in vars(NativeEngineLike) if not n.startswith("_")]
    assert {"stream_generate", "encode", "abort_request", "max_model_len"} <= set(members)
    for name in members:
        ours = inspect.getattr_static(StandInNativeEngine, name)
        theirs = inspect.getattr_static(NativeEngineLike, name)
        assert isinstance(ours, property) == isinstance(theirs, property), name
        if isinstance(theirs, property):
            continue
        assert _params(ours) == _params(theirs), name
        assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs), name


def test_stand_in_follows_the_native_wheel_stubs() -> None:
    spec = importlib.util.find_spec("furiosa.llm_native")
    assert spec is not None and spec.origin is not None
    stub = Path(spec.origin).parent / "llm_native" / "llm.pyi"
    if not stub.exists():  # the stubs sit beside the extension module
        stub = Path(spec.origin).with_name("llm_native") / "llm.pyi"
    tree = ast.parse(stub.read_text())
    [engine] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "NativeLLMEngine"]
    methods = [n for n in engine.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    assert len(methods) > 10
    for method in methods:
        if method.name == "__init__":
            continue
        ours = inspect.getattr_static(StandInNativeEngine, method.name)
        is_property = any(
            isinstance(d, ast.Name) and d.id == "property" for d in method.decorator_list
        )
        assert isinstance(ours, property) == is_property, method.name
        if is_property:
            continue
        stub_params = [a.arg for a in method.args.args if a.arg != "self"]
        assert _params(ours) == stub_params, method.name
        is_async = isinstance(method, ast.AsyncFunctionDef)
        assert inspect.iscoroutinefunction(ours) == is_async, method.name


# ---- sampling, structured output and pooling options ----


def test_every_sampling_option_reaches_furiosa_llm() -> None:
    ours = SamplingParams(
        n=1, max_tokens=12, min_tokens=2, temperature=0.7, top_p=0.9, top_k=5, min_p=0.05,
        repetition_penalty=1.3, stop=["END", "STOP"], stop_token_ids=[7, 9],
        include_stop_str_in_output=True, ignore_eos=True, logprobs=3,
        skip_special_tokens=False, output_kind=RequestOutputKind.DELTA,
        extra_args={"note": "x"},
    )  # fmt: skip
    native = to_furiosa_sampling_params(ours)
    assert type(native) is FuriosaSampling
    assert native == FuriosaSampling(
        n=1, max_tokens=12, min_tokens=2, temperature=0.7, top_p=0.9, top_k=5, min_p=0.05,
        repetition_penalty=1.3, stop=None, stop_token_ids=[7, 9],
        include_stop_str_in_output=True, ignore_eos=True, logprobs=3,
        skip_special_tokens=False, output_kind=FuriosaKind.DELTA,
    )  # fmt: skip
    assert native.stop is None  # stop strings are ours, never the native engine's
    assert native.extra_args is None  # no key furiosa-llm reads
    # Of extra_args, furiosa-llm reads kv_transfer_params (PD disaggregation) only.
    pd = {"id": "pair-1", "remote_decoder": "h:1"}
    carried = to_furiosa_sampling_params(
        SamplingParams(extra_args={"kv_transfer_params": pd, "note": "x"})
    )
    assert carried.extra_args == {"kv_transfer_params": pd}
    assert carried.kv_transfer_params == pd
    kinds = {
        RequestOutputKind.CUMULATIVE: FuriosaKind.CUMULATIVE,
        RequestOutputKind.DELTA: FuriosaKind.DELTA,
        RequestOutputKind.FINAL_ONLY: FuriosaKind.FINAL,
    }
    for kind, theirs in kinds.items():
        assert to_furiosa_sampling_params(SamplingParams(output_kind=kind)).output_kind is theirs
    assert to_furiosa_sampling_params(SamplingParams(top_k=0)).top_k == -1  # disabled
    assert to_furiosa_sampling_params(SamplingParams(top_k=-1)).top_k == -1
    # The native engine needs a number: max_tokens=None becomes the room left.
    room = to_furiosa_sampling_params(
        SamplingParams(max_tokens=None), prompt_len=10, max_model_len=50
    )
    assert room.max_tokens == 40
    greedy_seeded = to_furiosa_sampling_params(SamplingParams(temperature=0.0, seed=3))
    assert greedy_seeded.temperature == 0.0  # a seed cannot change greedy output


@pytest.mark.parametrize(
    ("ours", "field", "value"),
    [
        (StructuredOutputsParams(json={"type": "object"}), "json", {"type": "object"}),
        (StructuredOutputsParams(json='{"type": "integer"}'), "json", '{"type": "integer"}'),
        (StructuredOutputsParams(regex=r"\d+"), "regex", r"\d+"),
        (StructuredOutputsParams(choice=["yes", "no"]), "choice", ["yes", "no"]),
        (StructuredOutputsParams(grammar='root ::= "a"'), "grammar", 'root ::= "a"'),
        (StructuredOutputsParams(json_object=True), "json_object", True),
        (
            StructuredOutputsParams(structural_tag={"type": "structural_tag", "format": {}}),
            "structural_tag",
            json.dumps({"type": "structural_tag", "format": {}}),
        ),
    ],
)
def test_every_structured_output_kind(
    ours: StructuredOutputsParams, field: str, value: Any
) -> None:
    native = to_furiosa_structured(ours)
    assert type(native) is FuriosaStructured
    assert getattr(native, field) == value
    others = {"json", "regex", "choice", "grammar", "json_object", "structural_tag"} - {field}
    assert all(getattr(native, name) is None for name in others)
    carried = to_furiosa_sampling_params(SamplingParams(structured_outputs=ours))
    assert carried.structured_outputs == native


def test_pooling_options() -> None:
    native = to_furiosa_pooling_params(
        PoolingParams(normalize=False, dimensions=64, truncate_prompt_tokens=100)
    )
    assert type(native) is FuriosaPooling
    assert (native.normalize, native.dimensions, native.truncate_prompt_tokens) == (False, 64, 100)
    assert native.task == "embed"
    default = to_furiosa_pooling_params(PoolingParams())
    assert (default.normalize, default.dimensions, default.truncate_prompt_tokens) == (
        True,
        None,
        -1,
    )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (dict(repetition_penalty=2.5), dict(repetition_penalty=2.5)),
        (dict(n=2), dict(n=2)),
        (dict(extra_args={"kv_transfer_params": {"remote_decoder": "h:1"}}),
         dict(extra_args={"kv_transfer_params": {"remote_decoder": "h:1"}})),
    ],
)  # fmt: skip
def test_invalid_options_fail_as_furiosa_llm_would(ours: dict, theirs: dict) -> None:
    with pytest.raises(ValueError) as expected:
        FuriosaSampling(**theirs)
    with pytest.raises(InvalidRequestError) as got:
        to_furiosa_sampling_params(SamplingParams(**ours))
    assert str(expected.value) in str(got.value)


def test_options_furiosa_llm_cannot_honour_are_refused() -> None:
    for option in ("presence_penalty", "frequency_penalty"):
        penalty: dict[str, Any] = {option: 0.5}
        with pytest.raises(InvalidRequestError, match=option):
            to_furiosa_sampling_params(SamplingParams(**penalty))
    with pytest.raises(InvalidRequestError, match="seed"):
        to_furiosa_sampling_params(SamplingParams(temperature=0.8, seed=1))


def test_invalid_options_fail_before_dispatch(furiosa_chat: AsyncEngine) -> None:
    stand_in = furiosa_chat.native.native  # type: ignore[attr-defined]
    before = len(stand_in.received)
    for bad in (SamplingParams(repetition_penalty=2.5), SamplingParams(presence_penalty=1.0)):
        with pytest.raises(InvalidRequestError):
            furiosa_chat.stream("hello", params=bad)
    assert len(stand_in.received) == before
    assert furiosa_chat.stats().request_ids == 0


# ---- building furiosa-llm's LLM from EngineArgs ----


def test_llm_kwargs_bind_to_the_real_llm() -> None:
    args = EngineArgs(
        model="furiosa-ai/Llama-3.1-8B-Instruct", revision="v2026.4.0", tokenizer="/tok",
        tokenizer_mode="slow", devices="npu:0,npu:1", pipeline_parallel_size=2,
        data_parallel_size=2, npu_queue_limit=3, max_processing_samples=64,
        fxb="/artifacts/llama.fxb", max_model_len=4096, backend="furiosa",
    )  # fmt: skip
    kwargs = llm_kwargs(args, furiosa_llm.LLM)
    inspect.signature(furiosa_llm.LLM).bind(**kwargs)  # every name is one LLM takes
    config = kwargs.pop("scheduler_config")
    assert type(config) is SchedulerConfig
    assert (config.npu_queue_limit, config.max_processing_samples) == (3, 64)
    assert kwargs == {
        "model_id_or_path": "furiosa-ai/Llama-3.1-8B-Instruct", "revision": "v2026.4.0",
        "tokenizer": "/tok", "tokenizer_mode": "slow", "devices": "npu:0,npu:1",
        "pipeline_parallel_size": 2, "data_parallel_size": 2, "fxb": "/artifacts/llama.fxb",
        "max_model_len": 4096,
    }  # fmt: skip
    minimal = llm_kwargs(EngineArgs(model="/models/m"), furiosa_llm.LLM)
    assert minimal == {"model_id_or_path": "/models/m", "tokenizer_mode": "auto"}


@pytest.mark.parametrize(
    "option",
    [
        {"seed": 1}, {"enable_jit_compilation": True}, {"jit_threshold": 9},
        {"jit_unit_size": 4}, {"jit_max_workers": 2}, {"cache_dir": "/tmp/c"},
        {"spare_blocks_ratio": 0.5},
    ],
)  # fmt: skip
def test_earlier_release_options_this_furiosa_llm_lacks_are_refused(option: dict) -> None:
    # furiosa-llm 2026.4 dropped an earlier release's seed, cache_dir and JIT options.
    [name] = option
    with pytest.raises(ValueError, match=name):
        llm_kwargs(EngineArgs(model="/models/m", **option), furiosa_llm.LLM)


def test_default_models_and_missing_hardware_fail_clearly() -> None:
    with pytest.raises(ModelNotFoundError, match="no RNGD build"):
        engine_from_args(EngineArgs(backend="furiosa"))
    with pytest.raises(ModelNotFoundError, match="no RNGD build"):
        get_engine(backend="furiosa")
    with pytest.raises(ValueError, match="Unknown option 'colour'"):
        get_engine(default_embedding_dir(), task="embed", backend="furiosa", colour="red")
    # A real LLM(...) needs the model, its artifact and an NPU: none here, so it fails.
    with pytest.raises(Exception):  # noqa: B017 - whichever furiosa-llm raises first
        engine_from_args(EngineArgs(model="/nonexistent/model", backend="furiosa"))


def test_image_support_follows_furiosa_llms_registry() -> None:
    class Model:
        def __init__(self, model_type: str) -> None:
            self.model_metadata = StandInModelMetadata("generate", model_type)

    assert supports_images(Model("qwen2_5_vl")) and supports_images(Model("gemma4"))
    assert not supports_images(Model("llama"))


def test_errors_map_to_ours() -> None:
    class Native:
        alive = True

        def is_alive(self) -> bool:
            return self.alive

    native = Native()
    theirs = FuriosaContextLength(max_model_len=100, prompt_tokens=90, max_completion_tokens=20)
    mapped = map_error(theirs, native)
    assert isinstance(mapped, ContextLengthExceededError)
    assert (mapped.max_model_len, mapped.prompt_tokens, mapped.max_tokens) == (100, 90, 20)
    assert isinstance(map_error(ValueError("bad"), native), InvalidRequestError)
    assert type(map_error(RuntimeError("boom"), native)) is EngineError
    native.alive = False
    assert isinstance(map_error(RuntimeError("boom"), native), EngineDeadError)
