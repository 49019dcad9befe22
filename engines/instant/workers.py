"""The instant server's processes: the listening socket, one event loop per worker, and with
`workers=N` N forked processes sharing the port through SO_REUSEPORT (and one counters array)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable

from burstlab.engines.instant.app import App
from burstlab.engines.instant.config import InstantConfig
from burstlab.engines.instant.counters import shared_counters
from burstlab.engines.instant.protocol import Conn
from burstlab.engines.process import wait_for_exit_request


def listen_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop when uvloop is installed, else asyncio's own."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a declared extra
        return asyncio.new_event_loop()


def serve_worker(
    cfg: InstantConfig,
    sock: socket.socket,
    counters: ctypes.Array[ctypes.c_int64],
    worker: int,
    stop_fd: int | None,
) -> None:
    """Run one worker's event loop on `sock` until SIGTERM (or `stop_fd` reaches EOF)."""
    loop = new_loop()
    asyncio.set_event_loop(loop)
    app = App(cfg, counters, worker)
    sock.listen(4096)
    server = loop.run_until_complete(loop.create_server(lambda: Conn(app), sock=sock, backlog=4096))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    if stop_fd is not None:

        def _on_stop_fd() -> None:
            if not os.read(stop_fd, 4096):
                loop.stop()

        loop.add_reader(stop_fd, _on_stop_fd)
    else:  # a forked worker: exit when the supervisor is gone
        parent = os.getppid()

        def _check_parent() -> None:
            if os.getppid() != parent:
                loop.stop()
            else:
                loop.call_later(0.5, _check_parent)

        _check_parent()
    try:
        loop.run_forever()
    finally:
        server.close()


def run_server(cfg: InstantConfig, announce: Callable[[int], object]) -> None:
    """Serve until told to stop. `announce(port)` is called once every worker listens."""
    cfg.validate()
    counters = shared_counters(cfg.workers)
    if cfg.workers == 1:
        sock = listen_socket(cfg.host, cfg.port, reuse_port=False)
        sock.listen(4096)
        announce(sock.getsockname()[1])
        serve_worker(cfg, sock, counters, 0, sys.stdin.fileno())
        return
    reserve = listen_socket(cfg.host, cfg.port, reuse_port=True)  # holds the port, never listens
    port = reserve.getsockname()[1]
    ready_r, ready_w = os.pipe()
    pids = []
    for worker in range(cfg.workers):
        pid = os.fork()
        if pid == 0:  # worker
            os.close(ready_r)
            code = 0
            try:
                reserve.close()
                sock = listen_socket(cfg.host, port, reuse_port=True)
                sock.listen(4096)
                os.write(ready_w, b"1")
                serve_worker(cfg, sock, counters, worker, None)
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    os.close(ready_w)
    got = b""
    while len(got) < cfg.workers:
        more = os.read(ready_r, cfg.workers)
        if not more:
            break
        got += more
    announce(port)
    wait_for_exit_request()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for pid in pids:
        os.waitpid(pid, 0)
