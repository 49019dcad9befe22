"""Test servers (llama.cpp engine, instant server) as child processes that never outlive us.

Each server runs as `python -m burstlab.engines.<module>` (`llamacpp_child`, `instant`) with a pipe
on its stdin. The child blocks until SIGTERM or until that pipe reaches EOF — which happens when the
parent exits for any reason, crash included — so no test run leaves a server behind on a port.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from burstlab.errors import EngineError, UsageError
from burstlab.paths import data_dir as resolve_data_dir

#: Every server burstlab starts listens on loopback only.
HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago (the OS picks it; tiny race, fine on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port(port: int, host: str = HOST, *, free: bool = True) -> int:
    """`port` when it is a TCP port number (0 = any) and, with `free`, nobody listens there yet;
    UsageError for a number out of range, EngineError when it is taken — before anything starts
    on it. Returns `port`."""
    if not 0 <= port <= 65535:
        raise UsageError(
            f"expected a TCP port 1-65535 (0 picks a free one), got {port}", param="port"
        )
    if free and port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise EngineError(
                    f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose another port "
                    "(0 picks a free one)"
                ) from None
    return port


#: What `python -m MODULE` does, less one thing: -m puts the working directory first on
#: sys.path, so a folder named `burstlab` there (a source checkout, with the package installed
#: from it) would shadow the installed package and the child would die importing it.
_RUN_MODULE = (
    "import runpy, sys\n"
    "if sys.path and sys.path[0] == '':\n"
    "    del sys.path[0]\n"
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n"
)


def spawn_module(
    module: str, args: list[str], *, log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `python -m module args…` (whatever the working directory holds) with stdin as the
    parent-liveness pipe.

    stdout is a pipe (the child announces readiness there) unless `log_path` is given, in which
    case stdout and stderr both go to that file (llama.cpp logs a lot).
    """
    argv = [sys.executable, "-c", _RUN_MODULE, module, *args]
    if log_path is None:
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    with open(log_path, "wb") as log:
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log, stderr=log)


def stop_process(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM, wait up to `timeout_s`, then SIGKILL; close our pipe ends. Safe to call twice."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def wait_for_exit_request() -> None:
    """Child side: block until SIGTERM arrives or the parent's stdin pipe closes, then return."""

    def _terminate(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    with contextlib.suppress(SystemExit, KeyboardInterrupt, OSError):
        while sys.stdin.buffer.read(4096):
            pass


def engine_data_dir(data_dir: str | Path | None) -> Path:
    """The data directory an engine keeps its models and logs in (created on first use);
    EngineError (one line) when it cannot be created."""
    try:
        return resolve_data_dir(data_dir)
    except OSError as exc:
        where = exc.filename or data_dir
        raise EngineError(
            f"cannot create the data directory {where}: {exc.strerror or exc}"
        ) from None


def cached_model_or_error(
    build: Callable[[str, Any], Path], size: str, data_dir: Any, root: Path
) -> Path:
    """`build(size, data_dir)` — a random-weight model written once into the data directory —
    with a failure to write it as one EngineError line."""
    try:
        return build(size, data_dir)
    except OSError as exc:
        raise EngineError(
            f"cannot write the model to the data directory ({exc.strerror or exc}: "
            f"{exc.filename or root})"
        ) from None


def engine_log(root: Path, name: str) -> Path:
    """`<root>/engine-logs/<name>`, its folder made; EngineError (one line) when it cannot be."""
    folder = root / "engine-logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(
            f"cannot write the engine log to {folder}: {exc.strerror or exc}"
        ) from None
    return folder / name


def last_log_line(path: Path) -> str:
    """The last non-empty line of an engine's log (what it said before dying), one line."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    last = next((line.strip() for line in reversed(text) if line.strip()), "")
    return (last[:300] + "…" if len(last) > 300 else last) or "empty log"


class ChildServer:
    """Lifecycle shared by the server handles; subclasses have `process`, `base_url` and
    `log_path`, and name their engine in `engine_name` (for errors)."""

    process: subprocess.Popen
    base_url: str
    log_path: Path
    engine_name = "engine"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        """One line of the log saying why the server stopped (subclasses may know better)."""
        return last_log_line(self.log_path)

    def wait_healthy(self, timeout_s: float, *, poll_s: float, request_timeout_s: float) -> None:
        """Poll GET /health until 200 (servers answer 503, or keep the port closed, while the
        model loads); EngineError quoting the log when the child dies or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        url = self.base_url + "/health"
        while True:
            if not self.alive:
                raise EngineError(
                    f"{self.engine_name} engine exited with code {self.process.returncode} "
                    f"before it was ready; its log {self.log_path} ends: {self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=request_timeout_s) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise EngineError(
                    f"{self.engine_name} engine on {self.base_url} not healthy after "
                    f"{timeout_s:.0f} s; its log {self.log_path} ends: {self.log_tail()}"
                )
            time.sleep(poll_s)

    def metrics(self) -> dict[str, float]:
        """The server's /metrics as {series: value}."""
        return prometheus_counters(self.base_url)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL; afterwards `base_url` refuses."""
        stop_process(self.process, timeout_s)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fetch_json(url: str, payload: dict | None = None, timeout_s: float = 30.0) -> dict:
    """GET (or POST `payload` as JSON) and decode the JSON answer — for small control calls."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        return json.loads(resp.read())


def prometheus_counters(base_url: str, timeout_s: float = 10.0) -> dict[str, float]:
    """The server's /metrics as {name: value}, e.g. `llamacpp:tokens_predicted_total`."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=timeout_s) as resp:
        text = resp.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name.strip()] = float(value)
    return values
