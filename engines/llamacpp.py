"""A real llama.cpp inference server on 127.0.0.1, for demos and end-to-end replay tests.

llama.cpp's own C++ HTTP server (through the `xllamacpp` wheel) runs in a child process —
`python -m burstlab.engines.llamacpp_child` — so its threads never compete with the replay client's event
loop for the GIL, and SIGTERM stops it cleanly. The child also exits when its parent dies (it
watches its stdin pipe), so a crashed test run leaves no engine behind.

Continuous batching is real: `n_parallel` slots decode together, requests beyond that wait for a
slot (real queueing), and `/metrics` exposes Prometheus counters that replay can be checked
against.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from burstlab.engines.extras import require
from burstlab.engines.process import (
    HOST,
    ChildServer,
    cached_model_or_error,
    check_port,
    engine_data_dir,
    engine_log,
    free_port,
    spawn_module,
)
from burstlab.engines.tinymodel import cached_model
from burstlab.errors import InputError, UsageError

__all__ = ["HOST", "EngineHandle", "check_port", "default_threads", "free_port", "local"]

DEFAULT_START_TIMEOUT_S = 60.0


def default_threads() -> int:
    """CPU threads for llama.cpp: half the usable cores (at least 1).

    The replay client shares the machine. llama.cpp's threads meet at a barrier after every
    operation, so when cores are oversubscribed one preempted thread stalls all the others:
    measured on 2 shared cores, 2 threads made 8×64-token batches 10-40× slower than 1 thread.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        usable = os.cpu_count() or 1
    return max(1, usable // 2)


@dataclass
class EngineHandle(ChildServer):
    """A running llama.cpp server. Send requests to `base_url` with `"model": model`."""

    engine_name: ClassVar[str] = "llama.cpp"

    base_url: str
    model: str
    model_path: Path
    port: int
    n_parallel: int
    ctx_per_slot: int
    threads: int
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    started_in_s: float = 0.0

    def info(self) -> dict:
        """What a run record should say about this engine (goes into run.json)."""
        return {
            "engine": "llama.cpp (xllamacpp)",
            "base_url": self.base_url,
            "model": self.model,
            "model_path": str(self.model_path),
            "n_parallel": self.n_parallel,
            "ctx_per_slot": self.ctx_per_slot,
            "threads": self.threads,
        }


def local(
    size: str = "tiny",
    *,
    gguf: str | Path | None = None,
    parallel: int = 4,
    ctx_per_slot: int = 2048,
    threads: int | None = None,
    port: int = 0,
    alias: str | None = None,
    timeout_s: float = DEFAULT_START_TIMEOUT_S,
    data_dir: str | Path | None = None,
) -> EngineHandle:
    """Start llama.cpp's server on 127.0.0.1 in its own process and wait until it is healthy.

    Without `gguf`, the random-weight model of preset `size` (tiny, small, medium) is built
    once and cached in the data dir `data_dir`; with it, any llama.cpp GGUF file is served.
    `parallel` slots each get `ctx_per_slot` tokens of context (llama.cpp's `n_ctx` is the
    total). `port=0` picks a free port. Raises EngineError with the server log's tail if it does
    not answer /health within `timeout_s` seconds. Use the handle as a context manager (or call
    `stop()`): ``with burstlab.engines.local() as engine: …``.
    """
    if parallel < 1 or ctx_per_slot < 16:
        raise UsageError(
            f"needs parallel ≥ 1 and ctx_per_slot ≥ 16, got {parallel}, {ctx_per_slot}",
            param="parallel" if parallel < 1 else "ctx_per_slot",
        )
    if threads is not None and threads < 1:
        raise UsageError(f"must be ≥ 1, got {threads}", param="threads")
    check_port(port, free=False)  # the range first: a bad number is a usage error, not a crash
    require("xllamacpp", "engine", "serving a llama.cpp engine")
    root = engine_data_dir(data_dir)  # created on first use
    if gguf is None:
        path = cached_model_or_error(cached_model, size, data_dir, root)
        alias = alias or f"burstlab-random-{size}"
    else:
        path = Path(gguf).expanduser().resolve()
        if not path.is_file():
            raise InputError(path, "model file not found", expected="a llama.cpp GGUF file")
        alias = alias or path.stem
    threads = threads or default_threads()
    port = check_port(port) if port else free_port()
    log_path = engine_log(root, f"engine-{port}.log")
    args = [
        "--model", str(path), "--alias", alias, "--port", str(port),
        "--parallel", str(parallel), "--ctx-per-slot", str(ctx_per_slot),
        "--threads", str(threads),
    ]  # fmt: skip
    t0 = time.perf_counter()
    process = spawn_module("burstlab.engines.llamacpp_child", args, log_path=log_path)
    handle = EngineHandle(
        base_url=f"http://{HOST}:{port}",
        model=alias,
        model_path=path,
        port=port,
        n_parallel=parallel,
        ctx_per_slot=ctx_per_slot,
        threads=threads,
        log_path=log_path,
        process=process,
    )
    try:
        handle.wait_healthy(timeout_s, poll_s=0.02, request_timeout_s=1.0)
    except BaseException:
        handle.stop()
        raise
    handle.started_in_s = time.perf_counter() - t0
    return handle
