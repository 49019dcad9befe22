"""A minimal raw-socket load loop, to measure the instant server's own ceiling."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

from burstlab.engines.instant.workers import new_loop


def measure_throughput(
    base_url: str, *, requests: int = 20000, connections: int = 32, max_tokens: int = 16
) -> dict[str, float]:
    """Streamed requests/s the server sustains against a minimal raw-socket keep-alive client.

    The load loop does nothing but write a pre-built request and read until the chunked body's
    terminator, so what it measures is close to the server's own ceiling.
    """
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

    loop = new_loop()
    try:
        n, seconds = loop.run_until_complete(run())
    finally:
        loop.close()
    return {"requests": n, "seconds": seconds, "requests_per_s": n / seconds}
