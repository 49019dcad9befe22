"""The instant server's fault modes: their names and help, the per-request draw, and the modes
that replace an answer (refuse, http500, http429, hang).

The modes that shape a stream (cut, malformed, no-done, no-usage, keepalive-comments,
empty-deltas, and slow's pacing) are rendered with the stream itself, in `render.py`.
"""

from __future__ import annotations

import random

from burstlab.engines.instant.protocol import Conn, error_response

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


def fault_named(value: bytes) -> str:
    """The mode an `X-Burstlab-Fault` header value names; ValueError if it names none."""
    fault = value.decode(errors="replace").strip().lower()
    if fault not in FAULT_HELP:
        raise ValueError(f"unknown X-Burstlab-Fault {fault!r}; expected one of {list(FAULTS)}")
    return fault


class FaultDraw:
    """One worker's seeded draw from the server-level mix {mode: probability}."""

    def __init__(self, faults: dict[str, float], seed: int, worker: int) -> None:
        self.rng = random.Random(seed * 1000 + worker)
        self.mix = [(mode, p) for mode, p in faults.items() if p > 0]

    def __call__(self) -> str | None:
        if not self.mix:
            return None
        u = self.rng.random()
        for mode, p in self.mix:
            if u < p:
                return mode
            u -= p
        return None


def answer_instead(conn: Conn, fault: str | None) -> bool:
    """Carry out a fault that replaces the answer; True if it did (the request is settled)."""
    if fault == "refuse":
        conn.reset()
        return True
    if fault == "hang":
        conn.busy = True  # read, never answered; the client must time out
        return True
    if fault == "http500":
        msg = "injected fault: internal server error"
        conn.reply(error_response(500, msg, "server_error", conn.keep_alive))
        return True
    if fault == "http429":
        msg = "injected fault: rate limited"
        conn.reply(
            error_response(429, msg, "rate_limit_error", conn.keep_alive, b"Retry-After: 1\r\n")
        )
        return True
    return False
