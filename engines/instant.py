"""An OpenAI-compatible server that answers instantly — and misbehaves on request.

Two jobs:

* **Measure the replay client, not the server.** `burstlab replay --calibrate` and
  `benchmarks/replay.py` need a target that is never the bottleneck. This server is a raw
  `asyncio.Protocol` HTTP/1.1 keep-alive server on uvloop that builds each streamed answer from
  pre-rendered byte templates and writes it in one call; `workers=N` runs N processes on one
  port with SO_REUSEPORT.
* **Exercise every wire behaviour a robust client must survive**, reproducibly: a per-request
  header `X-Burstlab-Fault: <mode>` or a server-level mix `faults={"cut": 0.1, ...}` (the
  probability of each mode per generation request) selects one of `FAULTS` (see `FAULT_HELP`).

Streaming follows vLLM's framing (one SSE event per HTTP chunk, `Transfer-Encoding: chunked`):
chat starts with a role-only chunk (`{"role": "assistant", "content": ""}`), every later chunk
carries `chunk_tokens` tokens, the last token chunk has `finish_reason: "length"`, then — when
`stream_options.include_usage` is set — a usage chunk with `choices: []` (or, with
`usage_style="final-chunk"`, llama.cpp's completions style: an empty-text chunk carrying both
`finish_reason` and `usage`), then `data: [DONE]`. Output is exactly `max_tokens` tokens of
" tok"; the toy tokenizer counts whitespace-separated words, so the answer's text re-tokenizes
to the same count. `/metrics` exposes Prometheus counters summed over workers.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from multiprocessing.sharedctypes import RawArray

from burstlab.engines.process import ChildServer, spawn_module, stop_process, wait_for_exit_request
from burstlab.errors import EngineError, UsageError

HOST = "127.0.0.1"
FAULT_HEADER = b"x-burstlab-fault"
FAULT_HELP = {
    "refuse": "connection reset (RST) as soon as the request arrives; no response bytes",
    "http500": "HTTP 500 with an OpenAI-style JSON error body; the connection stays open",
    "http429": "HTTP 429 with a JSON error body and `Retry-After: 1`",
    "hang": "the request is read and never answered (for client timeouts)",
    "cut": "the stream stops after half its token chunks; the connection closes mid-body",
    "malformed": "an SSE event whose JSON is truncated follows the first token chunk",
    "no-done": "the stream ends cleanly after its last chunk without `data: [DONE]`",
    "no-usage": "no usage chunk even when stream_options.include_usage is set",
    "keepalive-comments": "a `: keep-alive` SSE comment before every token chunk",
    "slow": "chunks spaced by `slow_itl_s` (default 50 ms) instead of instantly",
    "empty-deltas": "an empty-text chunk after every token chunk",
}
FAULTS = tuple(FAULT_HELP)
TOKEN_TEXT = " tok"
COUNTERS = (
    "requests_completions",
    "requests_chat",
    "requests_tokenize",
    "requests_other",
    "prompt_tokens",
    "completion_tokens",
    "responses_complete",
    *(f"fault_{f}" for f in FAULTS),
)
_C = {name: i for i, name in enumerate(COUNTERS)}


@dataclass(frozen=True)
class InstantConfig:
    """Everything that shapes the server's answers. Times in seconds."""

    host: str = HOST
    port: int = 0
    model: str = "burstlab-instant"
    chunk_tokens: int = 1
    delay_s: float = 0.0  # response headers → first token chunk (a TTFT floor)
    itl_s: float = 0.0  # gap between token chunks
    faults: dict[str, float] = field(default_factory=dict)
    slow_itl_s: float = 0.05
    usage_style: str = "separate"  # or "final-chunk" (llama.cpp /v1/completions)
    workers: int = 1
    seed: int = 0
    default_max_tokens: int = 16
    max_model_len: int = 32768

    def validate(self) -> None:
        unknown = sorted(set(self.faults) - set(FAULTS))
        if unknown:
            raise UsageError(
                f"unknown fault mode(s) {unknown}; expected some of {list(FAULTS)}", param="faults"
            )
        total = sum(self.faults.values())
        if any(p < 0 for p in self.faults.values()) or total > 1.0 + 1e-9:
            raise UsageError(
                f"fault probabilities must be ≥ 0 and sum to ≤ 1, got {self.faults}", param="faults"
            )
        if self.chunk_tokens < 1 or self.workers < 1:
            raise UsageError("chunk_tokens and workers must be ≥ 1")
        if min(self.delay_s, self.itl_s, self.slow_itl_s) < 0:
            raise UsageError("delays must be ≥ 0 seconds")
        if self.usage_style not in ("separate", "final-chunk"):
            raise UsageError(
                f"usage_style must be 'separate' or 'final-chunk', not {self.usage_style!r}"
            )


def toy_tokenize(text: str) -> list[int]:
    """The instant server's deterministic tokenizer: one token per whitespace-separated word."""
    return [zlib.crc32(word.encode()) % 32000 for word in text.split()]


def _count_prompt_tokens(body: dict) -> int:
    """Prompt size as the toy tokenizer sees it: words of the prompt, or of all message texts."""
    if "messages" in body:
        total = 0
        for message in body["messages"]:
            content = message.get("content") or ""
            if isinstance(content, list):  # content parts
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            total += len(content.split())
        return total
    prompt = body.get("prompt", "")
    if isinstance(prompt, str):
        return len(prompt.split())
    if prompt and isinstance(prompt[0], int):  # token ids
        return len(prompt)
    return sum(len(p.split()) if isinstance(p, str) else len(p) for p in prompt)


# --------------------------------------------------------------------------- wire templates


def _chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


LAST_CHUNK = b"0\r\n\r\n"
DONE = _chunk(b"data: [DONE]\n\n")
KEEPALIVE = _chunk(b": keep-alive\n\n")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}
_REASONS |= {405: "Method Not Allowed", 500: "Internal Server Error"}


def _json_response(status: int, payload: dict, keep_alive: bool, extra: bytes = b"") -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    conn = b"" if keep_alive else b"Connection: close\r\n"
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s\r\n%s"
        % (status, _REASONS[status].encode(), len(body), conn, extra, body)
    )


def _error(status: int, message: str, kind: str, keep_alive: bool, extra: bytes = b"") -> bytes:
    payload = {"error": {"message": message, "type": kind, "code": status}, "object": "error"}
    return _json_response(status, payload, keep_alive, extra)


def _sse_head(keep_alive: bool) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
        + (b"" if keep_alive else b"Connection: close\r\n")
        + b"\r\n"
    )


@dataclass
class _Answer:
    """A streamed answer as pieces: the gap before each (seconds), its bytes, its token count."""

    gaps: list[float]
    bodies: list[bytes]
    tokens: list[int]
    close_after: bool
    complete: bool  # the response is well-formed to its end (not cut)


class _Renderer:
    """Builds answers from templates rendered once per server (model name, object types)."""

    def __init__(self, cfg: InstantConfig) -> None:
        self.cfg = cfg
        model = json.dumps(cfg.model)
        self.prefix = {
            "completions": '{"id":"cmpl-%s","object":"text_completion","created":%d,"model":'
            + model
            + ',"choices":[',
            "chat": '{"id":"chatcmpl-%s","object":"chat.completion.chunk","created":%d,"model":'
            + model
            + ',"choices":[',
        }

    def _event(self, kind: str, rid: str, now: int, body: str) -> bytes:
        return _chunk(b"data: " + ((self.prefix[kind] % (rid, now)) + body).encode() + b"\n\n")

    @staticmethod
    def _choice(kind: str, text: str | None, finish: str | None, role: bool = False) -> str:
        """One choice, closing the choices array: `{...}]`."""
        reason = "null" if finish is None else json.dumps(finish)
        if kind == "completions":
            head = '{"index":0,"text":' + json.dumps(text or "") + ',"logprobs":null'
        elif role:
            head = '{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null'
        else:
            delta = "{}" if text is None else '{"content":' + json.dumps(text) + "}"
            head = '{"index":0,"delta":' + delta + ',"logprobs":null'
        return head + ',"finish_reason":' + reason + "}]"

    @staticmethod
    def _usage(prompt: int, completion: int) -> str:
        return (
            f'"usage":{{"prompt_tokens":{prompt},"total_tokens":{prompt + completion},'
            f'"completion_tokens":{completion}}}'
        )

    def pacing(self, fault: str | None) -> tuple[float, float]:
        """(seconds before the first token chunk, seconds between the following ones)."""
        if fault == "slow":
            return max(self.cfg.delay_s, self.cfg.slow_itl_s), self.cfg.slow_itl_s
        return self.cfg.delay_s, self.cfg.itl_s

    def stream(
        self,
        kind: str,
        rid: str,
        max_tokens: int,
        prompt_tokens: int,
        include_usage: bool,
        fault: str | None,
        keep_alive: bool,
    ) -> _Answer:
        cfg = self.cfg
        now = int(time.time())
        k = cfg.chunk_tokens
        n_chunks = -(-max_tokens // k)
        last_n = max_tokens - k * (n_chunks - 1)
        first_gap, itl = self.pacing(fault)
        final_chunk = include_usage and fault != "no-usage" and cfg.usage_style == "final-chunk"

        def token_event(n: int, finish: str | None) -> bytes:
            body = self._event(kind, rid, now, self._choice(kind, TOKEN_TEXT * n, finish) + "}")
            if fault == "keepalive-comments":
                return KEEPALIVE + body
            if fault == "empty-deltas":
                return body + self._event(kind, rid, now, self._choice(kind, "", None) + "}")
            return body

        # Every token chunk but the last is byte-identical: render it once, repeat the object.
        bodies = [token_event(k, None)] * (n_chunks - 1)
        bodies.append(token_event(last_n, None if final_chunk else "length"))
        tokens = [0] + [k] * (n_chunks - 1) + [last_n]
        if fault == "malformed":
            bodies[0] += _chunk(b'data: {"id":"cmpl-%s","choices":[{"index":0,\n\n' % rid.encode())
        head = _sse_head(keep_alive)
        if kind == "chat":
            head += self._event(kind, rid, now, self._choice(kind, None, None, role=True) + "}")
        bodies.insert(0, head)
        gaps = [0.0, first_gap] + [itl] * (n_chunks - 1)
        if fault == "cut":
            keep = 1 + n_chunks // 2  # the head and half the token chunks (none if 1 token)
            return _Answer(gaps[:keep], bodies[:keep], tokens[:keep], True, complete=False)
        tail = b""
        if final_chunk:
            text = self._choice(kind, "", "length") + "," + self._usage(prompt_tokens, max_tokens)
            tail += self._event(kind, rid, now, text + "}")
        elif include_usage and fault != "no-usage":
            tail += self._event(kind, rid, now, "]," + self._usage(prompt_tokens, max_tokens) + "}")
        if fault != "no-done":
            tail += DONE
        bodies[-1] += tail + LAST_CHUNK
        return _Answer(gaps, bodies, tokens, close_after=not keep_alive, complete=True)

    def whole(self, kind: str, rid: str, max_tokens: int, prompt_tokens: int) -> dict:
        """A non-streamed answer (`stream: false`)."""
        text = TOKEN_TEXT * max_tokens
        if kind == "chat":
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
            obj, prefix = "chat.completion", "chatcmpl-"
        else:
            choice = {"index": 0, "text": text, "logprobs": None}
            obj, prefix = "text_completion", "cmpl-"
        choice["finish_reason"] = "length"
        usage = {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + max_tokens,
            "completion_tokens": max_tokens,
        }
        return {
            "id": prefix + rid,
            "object": obj,
            "created": int(time.time()),
            "model": self.cfg.model,
            "choices": [choice],
            "usage": usage,
        }


# --------------------------------------------------------------------------- the server


class _App:
    """Routing, fault selection and counters for one worker process."""

    def __init__(self, cfg: InstantConfig, counters, worker: int) -> None:
        self.cfg = cfg
        self.render = _Renderer(cfg)
        self.counters = counters
        self.base = worker * len(COUNTERS)
        self.worker = worker
        self.n = 0
        self.rng = random.Random(cfg.seed * 1000 + worker)
        self.mix = [(mode, p) for mode, p in cfg.faults.items() if p > 0]
        self.loop = asyncio.get_event_loop()

    def count(self, name: str, by: int = 1) -> None:
        self.counters[self.base + _C[name]] += by

    def draw_fault(self) -> str | None:
        if not self.mix:
            return None
        u = self.rng.random()
        for mode, p in self.mix:
            if u < p:
                return mode
            u -= p
        return None

    def handle(self, conn: _Conn, method: bytes, path: bytes, fault: bytes | None, body: bytes):
        path = path.split(b"?", 1)[0]
        if path == b"/v1/completions" or path == b"/v1/chat/completions":
            kind = "chat" if path == b"/v1/chat/completions" else "completions"
            self.count("requests_" + kind)
            if method != b"POST":
                return conn.reply(_error(405, "use POST", "invalid_request_error", conn.keep_alive))
            return self.generate(conn, kind, fault, body)
        if path == b"/tokenize":
            self.count("requests_tokenize")
            return self.tokenize(conn, body)
        self.count("requests_other")
        if path == b"/health":
            return conn.reply(_json_response(200, {"status": "ok"}, conn.keep_alive))
        if path == b"/v1/models":
            model = {
                "id": self.cfg.model,
                "object": "model",
                "owned_by": "burstlab",
                "max_model_len": self.cfg.max_model_len,
            }
            return conn.reply(
                _json_response(200, {"object": "list", "data": [model]}, conn.keep_alive)
            )
        if path == b"/metrics":
            text = prometheus_text(self.counters, self.cfg.workers).encode()
            conn_hdr = b"" if conn.keep_alive else b"Connection: close\r\n"
            return conn.reply(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                b"Content-Length: %d\r\n%s\r\n%s" % (len(text), conn_hdr, text)
            )
        return conn.reply(
            _error(404, f"no route {path.decode(errors='replace')}", "not_found", conn.keep_alive)
        )

    def tokenize(self, conn: _Conn, body: bytes) -> None:
        try:
            req = json.loads(body)
            text = req.get("content", req.get("prompt"))
            if not isinstance(text, str):
                raise ValueError("send {'content': text} or {'prompt': text}")
        except ValueError as exc:
            return conn.reply(_error(400, str(exc), "invalid_request_error", conn.keep_alive))
        tokens = toy_tokenize(text)
        payload = {"tokens": tokens, "count": len(tokens), "max_model_len": self.cfg.max_model_len}
        return conn.reply(_json_response(200, payload, conn.keep_alive))

    def generate(self, conn: _Conn, kind: str, header_fault: bytes | None, body: bytes) -> None:
        if header_fault is not None:
            fault = header_fault.decode(errors="replace").strip().lower()
            if fault not in FAULT_HELP:
                msg = f"unknown X-Burstlab-Fault {fault!r}; expected one of {list(FAULTS)}"
                return conn.reply(_error(400, msg, "invalid_request_error", conn.keep_alive))
        else:
            fault = self.draw_fault()
        if fault is not None:
            self.count("fault_" + fault)
        if fault == "refuse":
            return conn.reset()
        if fault == "hang":
            conn.busy = True  # read, never answered; the client must time out
            return None
        if fault == "http500":
            msg = "injected fault: internal server error"
            return conn.reply(_error(500, msg, "server_error", conn.keep_alive))
        if fault == "http429":
            msg = "injected fault: rate limited"
            return conn.reply(
                _error(429, msg, "rate_limit_error", conn.keep_alive, b"Retry-After: 1\r\n")
            )
        try:
            req = json.loads(body)
            max_tokens = req.get("max_tokens")
            if max_tokens is None:
                max_tokens = req.get("max_completion_tokens", self.cfg.default_max_tokens)
            if type(max_tokens) is not int or max_tokens < 1:
                raise ValueError(f"max_tokens must be an integer ≥ 1, got {max_tokens!r}")
            prompt_tokens = _count_prompt_tokens(req)
            stream = bool(req.get("stream"))
            include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            return conn.reply(_error(400, str(exc), "invalid_request_error", conn.keep_alive))
        self.count("prompt_tokens", prompt_tokens)
        self.n += 1
        rid = f"{self.worker}-{self.n}"
        if not stream:  # answered after the time the stream would have taken
            payload = self.render.whole(kind, rid, max_tokens, prompt_tokens)
            first_gap, itl = self.render.pacing(fault)
            wait = first_gap + itl * (-(-max_tokens // self.cfg.chunk_tokens) - 1)
            body = _json_response(200, payload, conn.keep_alive)
            answer = _Answer([0.0, wait], [b"", body], [0, max_tokens], not conn.keep_alive, True)
            return conn.play(answer)
        answer = self.render.stream(
            kind, rid, max_tokens, prompt_tokens, include_usage, fault, conn.keep_alive
        )
        conn.play(answer)
        return None


class _Conn(asyncio.Protocol):
    """One client connection: parses pipelined HTTP/1.1 requests, answers them in order."""

    def __init__(self, app: _App) -> None:
        self.app = app
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.keep_alive = True
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
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
        self.reply(_error(400, message, "invalid_request_error", False))

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

    def play(self, answer: _Answer) -> None:
        """Write an answer's pieces: all at once when instant, else paced by call_later."""
        if not any(answer.gaps):
            self.transport.write(b"".join(answer.bodies))
            self._finished(answer, sum(answer.tokens))
            return
        self.busy = True
        self._step(answer, 0, 0)

    def _step(self, answer: _Answer, index: int, sent_tokens: int) -> None:
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

    def _finished(self, answer: _Answer, sent_tokens: int) -> None:
        self.app.count("completion_tokens", sent_tokens)
        if answer.complete:
            self.app.count("responses_complete")
        if answer.close_after and self.transport is not None:
            self.transport.close()
            self.transport = None


def prometheus_text(counters, workers: int) -> str:
    """Counters summed over worker rows, in the Prometheus text format."""
    n = len(COUNTERS)
    total = {
        name: sum(counters[w * n + i] for w in range(workers)) for i, name in enumerate(COUNTERS)
    }
    out = ["# TYPE burstlab_instant_requests_total counter"]
    for endpoint in ("completions", "chat", "tokenize", "other"):
        value = total[f"requests_{endpoint}"]
        out.append(f'burstlab_instant_requests_total{{endpoint="{endpoint}"}} {value}')
    for name in ("prompt_tokens", "completion_tokens", "responses_complete"):
        out += [
            f"# TYPE burstlab_instant_{name}_total counter",
            f"burstlab_instant_{name}_total {total[name]}",
        ]
    out.append("# TYPE burstlab_instant_faults_total counter")
    out += [f'burstlab_instant_faults_total{{fault="{f}"}} {total["fault_" + f]}' for f in FAULTS]
    out.append("# TYPE burstlab_instant_worker_generations_total counter")
    for w in range(workers):
        row = counters[w * n + _C["requests_completions"]] + counters[w * n + _C["requests_chat"]]
        out.append(f'burstlab_instant_worker_generations_total{{worker="{w}"}} {row}')
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- processes


def _listen_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a declared extra
        return asyncio.new_event_loop()


def _serve_worker(cfg: InstantConfig, sock: socket.socket, counters, worker: int, stop_fd) -> None:
    """Run one worker's event loop on `sock` until SIGTERM (or `stop_fd` reaches EOF)."""
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    app = _App(cfg, counters, worker)
    sock.listen(4096)
    server = loop.run_until_complete(
        loop.create_server(lambda: _Conn(app), sock=sock, backlog=4096)
    )
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


def run_server(cfg: InstantConfig, announce) -> None:
    """Serve until told to stop. `announce(port)` is called once every worker listens."""
    cfg.validate()
    counters = RawArray(ctypes.c_int64, cfg.workers * len(COUNTERS))
    if cfg.workers == 1:
        sock = _listen_socket(cfg.host, cfg.port, reuse_port=False)
        sock.listen(4096)
        announce(sock.getsockname()[1])
        _serve_worker(cfg, sock, counters, 0, sys.stdin.fileno())
        return
    reserve = _listen_socket(cfg.host, cfg.port, reuse_port=True)  # holds the port, never listens
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
                sock = _listen_socket(cfg.host, port, reuse_port=True)
                sock.listen(4096)
                os.write(ready_w, b"1")
                _serve_worker(cfg, sock, counters, worker, None)
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


# --------------------------------------------------------------------------- parent side


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
    model: str = "burstlab-instant",
    seed: int = 0,
    timeout_s: float = 20.0,
) -> InstantHandle:
    """Start the instant server in its own process on 127.0.0.1 and return once it listens.

    `faults` maps fault modes (`FAULTS`) to per-request probabilities for generation requests;
    a request's `X-Burstlab-Fault` header overrides the draw. `delay_s` holds back the first
    token chunk, `itl_s` spaces the following ones (seconds). `port=0` lets the OS pick.
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
    )
    cfg.validate()
    process = spawn_module("burstlab.engines.instant", ["--config", json.dumps(asdict(cfg))])
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    line = process.stdout.readline() if ready else b""
    try:
        actual = int(json.loads(line)["port"])
    except (ValueError, KeyError, TypeError):
        stop_process(process)
        raise EngineError(
            f"instant server did not start within {timeout_s:.0f} s "
            f"(exit code {process.returncode}); see its stderr above"
        ) from None
    return InstantHandle(f"http://{HOST}:{actual}", actual, model, cfg, process)


def measure_throughput(
    base_url: str, *, requests: int = 20000, connections: int = 32, max_tokens: int = 16
) -> dict[str, float]:
    """Streamed requests/s the server sustains against a minimal raw-socket keep-alive client.

    The load loop does nothing but write a pre-built request and read until the chunked body's
    terminator, so what it measures is close to the server's own ceiling.
    """
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    body = json.dumps(
        {
            "model": "m",
            "prompt": "hello " * 64,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    request = (
        b"POST /v1/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (url.netloc.encode(), len(body), body)
    )

    async def one_connection(count: int) -> int:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        done = 0
        for _ in range(count):
            writer.write(request)
            await reader.readuntil(b"\r\n0\r\n\r\n")
            done += 1
        writer.close()
        return done

    async def run() -> tuple[int, float]:
        shares = [
            requests // connections + (i < requests % connections) for i in range(connections)
        ]
        t0 = time.perf_counter()
        done = await asyncio.gather(*(one_connection(n) for n in shares if n))
        return sum(done), time.perf_counter() - t0

    loop = _new_loop()
    try:
        n, seconds = loop.run_until_complete(run())
    finally:
        loop.close()
    return {"requests": n, "seconds": seconds, "requests_per_s": n / seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="burstlab instant server (internal).")
    parser.add_argument("--config", required=True, help="InstantConfig as JSON")
    args = parser.parse_args(argv)
    cfg = InstantConfig(**json.loads(args.config))

    def announce(port: int) -> None:
        sys.stdout.write(json.dumps({"port": port, "pid": os.getpid()}) + "\n")
        sys.stdout.flush()

    run_server(cfg, announce)


if __name__ == "__main__":
    main()
