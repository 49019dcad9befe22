"""One worker's request handling: routing, the generation endpoints (fault selection included),
/tokenize and the small control endpoints, counted in the worker's row of the shared counters."""

from __future__ import annotations

import asyncio
import ctypes
import json

from burstlab.engines.instant.config import InstantConfig
from burstlab.engines.instant.counters import COUNTERS, INDEX, prometheus_text
from burstlab.engines.instant.faults import FaultDraw, answer_instead, fault_named
from burstlab.engines.instant.protocol import Answer, Conn, error_response, json_response
from burstlab.engines.instant.render import Renderer, count_prompt_tokens, toy_tokenize


class App:
    """Routing, fault selection and counters for one worker process."""

    def __init__(
        self, cfg: InstantConfig, counters: ctypes.Array[ctypes.c_int64], worker: int
    ) -> None:
        self.cfg = cfg
        self.render = Renderer(cfg)
        self.counters = counters
        self.base = worker * len(COUNTERS)
        self.worker = worker
        self.n = 0
        self.draw_fault = FaultDraw(cfg.faults, cfg.seed, worker)
        self.loop = asyncio.get_event_loop()

    def count(self, name: str, by: int = 1) -> None:
        self.counters[self.base + INDEX[name]] += by

    def handle(
        self, conn: Conn, method: bytes, path: bytes, fault: bytes | None, body: bytes
    ) -> None:
        path = path.split(b"?", 1)[0]
        if path == b"/v1/completions" or path == b"/v1/chat/completions":
            kind = "chat" if path == b"/v1/chat/completions" else "completions"
            self.count("requests_" + kind)
            if method != b"POST":
                return conn.reply(
                    error_response(405, "use POST", "invalid_request_error", conn.keep_alive)
                )
            return self.generate(conn, kind, fault, body)
        if path == b"/tokenize":
            self.count("requests_tokenize")
            return self.tokenize(conn, body)
        self.count("requests_other")
        if path == b"/health":
            return conn.reply(json_response(200, {"status": "ok"}, conn.keep_alive))
        if path == b"/v1/models":
            model = {
                "id": self.cfg.model,
                "object": "model",
                "owned_by": "burstlab",
                "max_model_len": self.cfg.max_model_len,
            }
            return conn.reply(
                json_response(200, {"object": "list", "data": [model]}, conn.keep_alive)
            )
        if path == b"/metrics":
            text = prometheus_text(self.counters, self.cfg.workers).encode()
            conn_hdr = b"" if conn.keep_alive else b"Connection: close\r\n"
            return conn.reply(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                b"Content-Length: %d\r\n%s\r\n%s" % (len(text), conn_hdr, text)
            )
        return conn.reply(
            error_response(
                404, f"no route {path.decode(errors='replace')}", "not_found", conn.keep_alive
            )
        )

    def tokenize(self, conn: Conn, body: bytes) -> None:
        try:
            req = json.loads(body)
            text = req.get("content", req.get("prompt"))
            if not isinstance(text, str):
                raise ValueError("send {'content': text} or {'prompt': text}")
        except ValueError as exc:
            return conn.reply(
                error_response(400, str(exc), "invalid_request_error", conn.keep_alive)
            )
        tokens = toy_tokenize(text)
        payload = {"tokens": tokens, "count": len(tokens), "max_model_len": self.cfg.max_model_len}
        return conn.reply(json_response(200, payload, conn.keep_alive))

    def generate(self, conn: Conn, kind: str, header_fault: bytes | None, body: bytes) -> None:
        if header_fault is not None:
            try:
                fault = fault_named(header_fault)
            except ValueError as exc:
                return conn.reply(
                    error_response(400, str(exc), "invalid_request_error", conn.keep_alive)
                )
        else:
            fault = self.draw_fault()
        if fault is not None:
            self.count("fault_" + fault)
        if answer_instead(conn, fault):
            return None
        try:
            req = json.loads(body)
            max_tokens = req.get("max_tokens")
            if max_tokens is None:
                max_tokens = req.get("max_completion_tokens", self.cfg.default_max_tokens)
            if type(max_tokens) is not int or max_tokens < 1:
                raise ValueError(f"max_tokens must be an integer ≥ 1, got {max_tokens!r}")
            prompt_tokens = count_prompt_tokens(req)
            stream = bool(req.get("stream"))
            include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            return conn.reply(
                error_response(400, str(exc), "invalid_request_error", conn.keep_alive)
            )
        self.count("prompt_tokens", prompt_tokens)
        self.n += 1
        rid = f"{self.worker}-{self.n}"
        if not stream:  # answered after the time the stream would have taken
            payload = self.render.whole(kind, rid, max_tokens, prompt_tokens)
            first_gap, itl = self.render.pacing(fault)
            wait = first_gap + itl * (-(-max_tokens // self.cfg.chunk_tokens) - 1)
            body = json_response(200, payload, conn.keep_alive)
            answer = Answer([0.0, wait], [b"", body], [0, max_tokens], not conn.keep_alive, True)
            return conn.play(answer)
        answer = self.render.stream(
            kind, rid, max_tokens, prompt_tokens, include_usage, fault, conn.keep_alive
        )
        conn.play(answer)
        return None
