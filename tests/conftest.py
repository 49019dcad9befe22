"""Fixtures every stage's tests share. Each test gets its own data directory so nothing leaks
into the user's cache or between tests.

Servers: `engine` is session-scoped (one llama.cpp process, tiny random-weight model, 4 slots)
because it is shared read-mostly by every end-to-end test; tests that read /metrics take
deltas. `instant_server` is a factory: `instant_server(faults={"cut": 0.1}, delay_s=0.001)` → a
handle whose server is stopped when the test ends.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from burstlab import engines
from burstlab.engines import EngineHandle, local
from burstlab.engines.tinymodel import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "traces" / "samples"


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    path = tmp_path_factory.mktemp("burstlab-data")
    monkeypatch.setenv("BURSTLAB_DATA_DIR", str(path))
    return path


@pytest.fixture
def data_dir(_isolated_data_dir) -> Path:
    """The data directory this test's burstlab calls use (also $BURSTLAB_DATA_DIR)."""
    return _isolated_data_dir


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real trace samples shipped in the package (traces/samples/)."""
    return SAMPLES


@pytest.fixture(scope="session")
def engine(tmp_path_factory) -> Iterator[EngineHandle]:
    """A real llama.cpp server on 127.0.0.1: tiny random model, n_parallel 4, 2048 ctx/slot.

    One thread: CI has 2 cores shared with the replay client, and a multi-threaded llama.cpp
    stalls badly when a core is taken away (see engine.default_threads).
    """
    root = tmp_path_factory.mktemp("engine")
    model = build_tiny_model(root / "models" / "tiny.gguf", "tiny")
    handle = local(gguf=model, alias="burstlab-random-tiny", parallel=4, threads=1, data_dir=root)
    yield handle
    handle.stop()


@pytest.fixture
def instant_server() -> Iterator[Callable[..., object]]:
    """Factory: `instant_server(**opts)` starts `instant_server(**opts)`; all stopped after."""
    handles = []

    def factory(**opts):
        handle = engines.instant_server(**opts)
        handles.append(handle)
        return handle

    yield factory
    for handle in handles:
        handle.stop()


@dataclass
class RawResponse:
    """One HTTP exchange as the wire had it: status, headers and the raw body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    def sse_data(self) -> list[str]:
        """The payloads of `data:` lines, in order (`[DONE]` included as a string)."""
        return [
            line[5:].strip() for line in self.body.decode().split("\n") if line.startswith("data:")
        ]

    def sse_json(self) -> list[dict]:
        """The decoded JSON chunks (everything but `[DONE]`)."""
        return [json.loads(d) for d in self.sse_data() if d != "[DONE]"]


def post_raw(
    base_url: str, path: str, body: dict, headers: dict | None = None, timeout_s: float = 30.0
) -> RawResponse:
    """POST JSON and read the whole answer (stream or not) without any SSE cleverness."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout_s)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        resp = conn.getresponse()
        return RawResponse(resp.status, dict(resp.getheaders()), resp.read())
    finally:
        conn.close()


@pytest.fixture
def post() -> Callable[..., RawResponse]:
    """`post(base_url, path, body, headers=None)` → RawResponse (status, headers, raw bytes)."""
    return post_raw
