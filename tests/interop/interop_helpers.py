"""Running a peer tool's interpreter for the interop tests (tests/interop)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_peer(python: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    """Run a peer's interpreter on `args` (with the helper scripts importable); the process
    output is kept for the failure message. The tokenizer is a local folder, so nothing is
    downloaded; HF_HUB_OFFLINE is left unset because AIPerf 0.13 then refuses a local
    tokenizer folder ("HFValidationError: Repo id must be in the form …")."""
    env = {**os.environ, "PYTHONPATH": str(HERE), "VLLM_LOGGING_LEVEL": "WARNING"}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=HERE
    )
