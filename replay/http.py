"""Small synchronous HTTP control calls (stdlib, keep-alive) made before a run starts.

The hot path uses aiohttp; these are the few calls around it (/v1/models, /tokenize, a probe
request), where a dependency-free blocking client is simplest.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


class ControlClient:
    """One keep-alive connection to a server; reconnects once when the server closed it."""

    def __init__(
        self, base_url: str, headers: dict[str, str] | None = None, timeout_s: float = 30.0
    ):
        url = urlsplit(base_url)
        self._https = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port
        self._prefix = url.path.rstrip("/")
        self._headers = headers or {}
        self._timeout = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """Send (`body`: JSON-able, or bytes sent as is) and read the whole answer: (status, body
        bytes). Raises OSError when unreachable."""
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        headers = {**self._headers, "Content-Type": "application/json"}
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self._connect()
            try:
                self._conn.request(method, self._prefix + path, body=data, headers=headers)
                resp = self._conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Like `request`, decoding a JSON answer (None when it is not JSON)."""
        status, raw = self.request(method, path, body)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
