"""Parent side of the instant server: `instant_server(...)` starts it as
`python -m burstlab.engines.instant` and returns an `InstantHandle` once it listens."""

from __future__ import annotations

import json
import select
import subprocess
from dataclasses import asdict, dataclass, field

from burstlab.engines.instant.config import DEFAULT_MODEL, HOST, InstantConfig
from burstlab.engines.process import ChildServer, check_port, spawn_module, stop_process
from burstlab.errors import EngineError


@dataclass
class InstantHandle(ChildServer):
    """A running instant server. `base_url` is "http://127.0.0.1:PORT"."""

    base_url: str
    port: int
    model: str
    config: InstantConfig
    process: subprocess.Popen = field(repr=False)


def instant_server(
    *,
    port: int = 0,
    faults: dict[str, float] | None = None,
    chunk_tokens: int = 1,
    delay_s: float = 0.0,
    itl_s: float = 0.0,
    slow_itl_s: float = 0.05,
    usage_style: str = "separate",
    workers: int = 1,
    model: str = DEFAULT_MODEL,
    seed: int = 0,
    max_model_len: int = 32768,
    timeout_s: float = 20.0,
) -> InstantHandle:
    """Start the instant server in its own process on 127.0.0.1 and return once it listens.

    `faults` maps fault modes (`FAULTS`) to per-request probabilities for generation requests;
    a request's `X-Burstlab-Fault` header overrides the draw. `delay_s` holds back the first
    token chunk, `itl_s` spaces the following ones (seconds). `port=0` lets the OS pick; a
    taken port is an EngineError before anything starts. `max_model_len` is the context length
    /v1/models reports (as vLLM does); the server itself never refuses a long prompt.
    """
    cfg = InstantConfig(
        port=port,
        faults=dict(faults or {}),
        chunk_tokens=chunk_tokens,
        delay_s=delay_s,
        itl_s=itl_s,
        slow_itl_s=slow_itl_s,
        usage_style=usage_style,
        workers=workers,
        model=model,
        seed=seed,
        max_model_len=max_model_len,
    )
    cfg.validate()
    check_port(port)
    process = spawn_module("burstlab.engines.instant", ["--config", json.dumps(asdict(cfg))])
    stdout = process.stdout
    assert stdout is not None  # spawn_module pipes stdout when no log_path is given
    ready, _, _ = select.select([stdout], [], [], timeout_s)
    line = stdout.readline() if ready else b""
    try:
        actual = int(json.loads(line)["port"])
    except (ValueError, KeyError, TypeError):
        exited = process.poll() is not None
        stop_process(process)
        raise EngineError(
            f"instant server exited with code {process.returncode} before it listened; see "
            "its stderr above"
            if exited
            else f"instant server did not start within {timeout_s:.0f} s; see its stderr above"
        ) from None
    return InstantHandle(f"http://{HOST}:{actual}", actual, model, cfg, process)
