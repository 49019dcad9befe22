"""Without vLLM installed, `vllm_local` says which extra brings it, in one line, before anything
is built or started (runs in the default suite; vLLM's absence is simulated)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from burstlab import engines
from burstlab.errors import MissingExtraError, UsageError


def test_missing_vllm_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(MissingExtraError) as info:
        engines.vllm_local("tiny", data_dir=tmp_path)
    assert str(info.value) == (
        "serving a vLLM engine needs the optional package 'vllm': pip install 'burstlab[vllm]'"
    )
    assert not (tmp_path / "models").exists()  # no model built for an engine that cannot run


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"max_model_len": 8}, "max_model_len"),
        ({"max_num_seqs": 0}, "max_num_seqs"),
        ({"kv_cache_gib": 0}, "kv_cache_gib"),
        ({"port": 70000}, "port"),
    ],
)
def test_bad_parameters_are_usage_errors(kwargs: dict, param: str, tmp_path: Path):
    with pytest.raises(UsageError) as info:
        engines.vllm_local("tiny", data_dir=tmp_path, **kwargs)
    assert info.value.param == param


def test_log_tail_names_the_cause_not_the_wrapper(tmp_path: Path):
    """A vLLM start that dies in its engine process: the one-line reason is the root cause from
    the log, not vLLM's closing "see root cause above", with the fix for the known CUDA-wheel
    fault."""
    from burstlab.engines.vllm import why_stopped as log_tail

    log = tmp_path / "vllm.log"
    log.write_text(
        "(APIServer pid=1) INFO starting\n"
        "Traceback (most recent call last):\n"
        '  File "torch/_ops.py", line 1516, in load_library\n'
        "OSError: libc10_cuda.so: cannot open shared object file: No such file or directory\n"
        "\n"
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core "
        "proc(s): {}\n"
    )
    tail = log_tail(log)
    assert tail.startswith("OSError: libc10_cuda.so: cannot open shared object file")
    assert "pip uninstall torchvision torchaudio torchcodec" in tail and "\n" not in tail
    log.write_text("INFO: loading\nvllm: error: unrecognized arguments: --x\n")
    assert log_tail(log) == "vllm: error: unrecognized arguments: --x"
    assert log_tail(tmp_path / "missing.log") == "no log"
