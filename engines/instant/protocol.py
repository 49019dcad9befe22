"""HTTP/1.1 for the instant server: the per-connection `asyncio.Protocol` (pipelined keep-alive
requests, answered in order), response framing, and the paced writing of a streamed answer."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from dataclasses import dataclass
from typing import Protocol

FAULT_HEADER = b"x-burstlab-fault"  # picked out of the request head; see faults.py
LAST_CHUNK = b"0\r\n\r\n"
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}
REASONS |= {405: "Method Not Allowed", 500: "Internal Server Error"}


def chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def json_response(status: int, payload: dict, keep_alive: bool, extra: bytes = b"") -> bytes:
    """A complete response with a compact JSON body; `extra` is more header lines."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    conn = b"" if keep_alive else b"Connection: close\r\n"
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s\r\n%s"
        % (status, REASONS[status].encode(), len(body), conn, extra, body)
    )


def error_response(
    status: int, message: str, kind: str, keep_alive: bool, extra: bytes = b""
) -> bytes:
    """An OpenAI-style JSON error response."""
    payload = {"error": {"message": message, "type": kind, "code": status}, "object": "error"}
    return json_response(status, payload, keep_alive, extra)


def sse_head(keep_alive: bool) -> bytes:
    """The head of a streamed (chunked `text/event-stream`) response."""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
        + (b"" if keep_alive else b"Connection: close\r\n")
        + b"\r\n"
    )


class Handler(Protocol):
    """What a connection needs from the worker's app (`app.App`)."""

    loop: asyncio.AbstractEventLoop

    def handle(
        self, conn: Conn, method: bytes, path: bytes, fault: bytes | None, body: bytes
    ) -> None: ...

    def count(self, name: str, by: int = 1) -> None: ...


@dataclass
class Answer:
    """A streamed answer as pieces: the gap before each (seconds), its bytes, its token count."""

    gaps: list[float]
    bodies: list[bytes]
    tokens: list[int]
    close_after: bool
    complete: bool  # the response is well-formed to its end (not cut)


class Conn(asyncio.Protocol):
    """One client connection: parses pipelined HTTP/1.1 requests, answers them in order."""

    def __init__(self, app: Handler) -> None:
        self.app = app
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.keep_alive = True
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        """A stream server hands its protocols a full `asyncio.Transport`."""
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.process()

    def process(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 1 << 16:
                    self.bad_request("request head larger than 64 KiB")
                return
            lines = self.buf[:end].split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3:
                return self.bad_request("malformed request line")
            method, path, version = parts
            length, fault, connection = 0, None, b""
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        return self.bad_request("bad Content-Length")
                elif name == b"connection":
                    connection = value.strip().lower()
                elif name == FAULT_HEADER:
                    fault = value.strip()
                elif name == b"transfer-encoding":
                    return self.bad_request("chunked request bodies are not supported")
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[end + 4 : total]
            self.buf = self.buf[total:]
            if version == b"HTTP/1.0":
                self.keep_alive = connection == b"keep-alive"
            else:
                self.keep_alive = connection != b"close"
            self.app.handle(self, method, path, fault, body)

    def bad_request(self, message: str) -> None:
        self.keep_alive = False
        self.reply(error_response(400, message, "invalid_request_error", False))

    def reply(self, data: bytes) -> None:
        """Send a complete response; close if the client asked, else go on with the next one."""
        if self.transport is None:
            return
        self.transport.write(data)
        if not self.keep_alive:
            self.transport.close()
            self.transport = None

    def reset(self) -> None:
        """Abort with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()
        self.transport = None

    def play(self, answer: Answer) -> None:
        """Write an answer's pieces: all at once when instant, else paced by call_later."""
        if self.transport is None:  # the client went away before the answer
            return
        if not any(answer.gaps):
            self.transport.write(b"".join(answer.bodies))
            self._finished(answer, sum(answer.tokens))
            return
        self.busy = True
        self._step(answer, 0, 0)

    def _step(self, answer: Answer, index: int, sent_tokens: int) -> None:
        """Write piece `index` (its gap has passed) and every following piece due at once."""
        self.timer = None
        if self.transport is None:  # the client went away mid-stream
            self.app.count("completion_tokens", sent_tokens)
            return
        n = len(answer.bodies)
        while True:
            self.transport.write(answer.bodies[index])
            sent_tokens += answer.tokens[index]
            index += 1
            if index == n:
                break
            gap = answer.gaps[index]
            if gap > 0:
                self.timer = self.app.loop.call_later(gap, self._step, answer, index, sent_tokens)
                return
        self.busy = False
        self._finished(answer, sent_tokens)
        if self.transport is not None and self.buf:
            self.process()

    def _finished(self, answer: Answer, sent_tokens: int) -> None:
        self.app.count("completion_tokens", sent_tokens)
        if answer.complete:
            self.app.count("responses_complete")
        if answer.close_after and self.transport is not None:
            self.transport.close()
            self.transport = None
