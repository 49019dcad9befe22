"""Optional packages: without one, the command that needs it says which extra installs it, in
one line (exit 2), instead of dying in a ModuleNotFoundError. The report: without the extras,
`burstlab engine` died in `ModuleNotFoundError: No module named 'gguf'`.

Here the missing module is simulated (``sys.modules[name] = None`` makes its import fail);
tests/engines/test_without_extras.py checks the same in a real install without the extras."""

from __future__ import annotations

import asyncio
import sys

import pytest
from typer.testing import CliRunner

from burstlab import engines
from burstlab.cards import card
from burstlab.cli import app
from burstlab.engines import optional_import, require
from burstlab.engines.tinymodel import build_tiny_model
from burstlab.errors import MissingExtraError
from burstlab.replay.client import ClientOptions, run_async
from burstlab.replay.run import ReplayConfig, replay


def missing(monkeypatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_helpers_name_the_extra(monkeypatch):
    missing(monkeypatch, "gguf")
    with pytest.raises(MissingExtraError) as info:
        optional_import("gguf", "engine", "building the test model")
    assert str(info.value) == (
        "building the test model needs the optional package 'gguf': pip install 'burstlab[engine]'"
    )
    with pytest.raises(MissingExtraError, match=r"pip install 'burstlab\[engine\]'"):
        require("gguf", "engine", "building the test model")
    assert optional_import("json", "x", "y").dumps([]) == "[]"
    require("json", "x", "y")  # present: nothing happens


def test_missing_gguf_when_building_the_model(monkeypatch, tmp_path):
    missing(monkeypatch, "gguf")
    with pytest.raises(MissingExtraError) as info:
        build_tiny_model(tmp_path / "m.gguf")
    assert str(info.value) == (
        "building the random-weight test model needs the optional package 'gguf': "
        "pip install 'burstlab[engine]'"
    )
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_missing_xllamacpp_before_anything_starts(monkeypatch, tmp_path):
    missing(monkeypatch, "xllamacpp")
    with pytest.raises(MissingExtraError) as info:
        engines.local("tiny", data_dir=tmp_path)
    assert str(info.value) == (
        "serving a llama.cpp engine needs the optional package 'xllamacpp': "
        "pip install 'burstlab[engine]'"
    )
    assert not (tmp_path / "models").exists()  # no model was built for an engine that cannot run


@pytest.mark.parametrize("absent", [("xllamacpp",), ("gguf", "xllamacpp"), ("gguf",)])
def test_burstlab_engine_cli_names_the_extra(monkeypatch, tmp_path, absent):
    missing(monkeypatch, *absent)
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "engine", "--port", "0"])
    assert result.exit_code == 2, result.output
    module = "xllamacpp" if "xllamacpp" in absent else "gguf"
    assert f"needs the optional package '{module}': pip install 'burstlab[engine]'" in result.output
    assert "Traceback" not in result.output and "ModuleNotFoundError" not in result.output


def test_missing_tokenizers_before_the_run(monkeypatch, tmp_path):
    missing(monkeypatch, "tokenizers")
    (tmp_path / "x.json").write_text("{}")
    config = ReplayConfig(
        client=ClientOptions(url="http://127.0.0.1:9"), tokenizer=str(tmp_path / "x.json")
    )
    import polars as pl

    requests = pl.DataFrame({"source": ["s"], "arrival_s": [0.0], "input_tokens": [5],
                             "output_tokens": [5], "failed": [False]})  # fmt: skip
    with pytest.raises(MissingExtraError) as info:
        replay(requests, config, tmp_path / "run")
    assert str(info.value) == (
        "exact prompt lengths from a tokenizer.json needs the optional package 'tokenizers': "
        "pip install 'burstlab[tokenizers]'"
    )
    assert not (tmp_path / "run").exists()
    result = CliRunner().invoke(
        app, ["replay", "azure-llm-2023-conv", "--tokenizer", str(tmp_path / "x.json"),
              "--out", str(tmp_path / "cli")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {info.value}"
    assert not (tmp_path / "cli").exists()


def test_missing_huggingface_hub_before_the_target_is_read(monkeypatch, tmp_path):
    missing(monkeypatch, "huggingface_hub")
    # a dataset that is not even ingested: the missing extra is still what is reported first
    with pytest.raises(MissingExtraError, match=r"pip install 'burstlab\[card\]'$"):
        card("azure-llm-2023-conv", tmp_path / "card")
    result = CliRunner().invoke(app, ["card", "nothing-here", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: validating a dataset card needs the optional package 'huggingface_hub': "
        "pip install 'burstlab[card]'"
    )
    assert not (tmp_path / "c").exists()


def test_uvloop_is_optional_for_real(monkeypatch):
    """uvloop (extra `uvloop`) only speeds things up: without it the replay client and the
    instant server run on asyncio's own loop."""
    missing(monkeypatch, "uvloop")
    from burstlab.engines.instant.workers import new_loop

    async def loop_name() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_async(loop_name()).startswith("asyncio")
    loop = new_loop()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
