"""The interop lane: burstlab's peer formats validated by the peer tools' own code.

`make test-interop` runs these tests (``pytest -m interop tests/interop``) with burstlab's
.venv; each peer runs in a virtualenv of its own, found at
- vLLM: $BURSTLAB_VLLM_PYTHON, else .venv-vllm/bin/python (`make test-vllm` builds it);
- AIPerf: $BURSTLAB_AIPERF_PYTHON, else .venv-aiperf/bin/python (`make test-interop` builds it);
- guidellm (optional, not built): $BURSTLAB_GUIDELLM_PYTHON, else .venv-guidellm/bin/python.
A test whose peer is missing is skipped with one reason line, and every test marked `interop`
is skipped unless the run selects the marker (`-m interop`), so `make test` never starts them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from burstlab.engines.hfmodel import build_hf_model

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _python(env: str, venv: str) -> Path | None:
    path = Path(os.environ.get(env) or REPO / venv / "bin" / "python")
    return path if path.is_file() else None


def _has(python: Path | None, module: str) -> bool:
    if python is None:
        return False
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(python), "-c", code], capture_output=True).returncode == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "interop" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="the interop lane: make test-interop runs these tests")
    for item in items:
        if item.get_closest_marker("interop") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The interpreter with vLLM (its `bench serve` code)."""
    python = _python("BURSTLAB_VLLM_PYTHON", ".venv-vllm")
    if not _has(python, "vllm"):
        pytest.skip("vLLM is not installed: make test-vllm builds .venv-vllm")
    assert python is not None
    return python


@pytest.fixture(scope="session")
def aiperf_python() -> Path:
    """The interpreter with AIPerf."""
    python = _python("BURSTLAB_AIPERF_PYTHON", ".venv-aiperf")
    if not _has(python, "aiperf"):
        pytest.skip("AIPerf is not installed: make test-interop builds .venv-aiperf")
    assert python is not None
    return python


@pytest.fixture(scope="session")
def guidellm_python() -> Path:
    """An interpreter with guidellm (optional: $BURSTLAB_GUIDELLM_PYTHON; the lane does not
    build one, guidellm depends on a CUDA build of torch)."""
    python = _python("BURSTLAB_GUIDELLM_PYTHON", ".venv-guidellm")
    if not _has(python, "guidellm"):
        pytest.skip("guidellm is not installed: set BURSTLAB_GUIDELLM_PYTHON to run this test")
    assert python is not None
    return python


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local Hugging Face model folder (tiny, random) whose tokenizer the peers load offline."""
    return build_hf_model(tmp_path_factory.mktemp("hf") / "tiny", "tiny")
