"""What the client learns about the target before a run: engine identity, context length and
prompt overhead.

Small synchronous control calls (stdlib http.client), made before the clock starts, never during
the run.
"""

from __future__ import annotations

import contextlib
import http.client
import math
from typing import Any
from urllib.parse import urlsplit

from burstlab.errors import UsageError
from burstlab.replay.client import ENDPOINT_PATHS
from burstlab.replay.http import ControlClient
from burstlab.replay.prompts import request_body
from burstlab.replay.sse import DONE, SSEParser, interpret


def check_url(url: str, param: str = "url") -> str:
    """`url` when it is an http(s) base URL with a host (and a valid port); UsageError naming
    what is wrong otherwise — before a run, not as one failed record per request."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port out of range or not a number
    except ValueError as exc:
        raise UsageError(f"not a valid URL ({exc}): {url!r}", param=param) from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"expected an http:// or https:// base URL, found {url!r}", param=param)
    if not parts.hostname:
        raise UsageError(f"the URL names no host: {url!r}", param=param)
    if port == 0:
        raise UsageError(f"port 0 cannot be connected to: {url!r}", param=param)
    if parts.query or parts.fragment:
        raise UsageError(f"a base URL has no query or fragment: {url!r}", param=param)
    return url


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def server_info(
    base_url: str, api_key: str | None = None, timeout_s: float = 5.0
) -> dict[str, Any]:
    """The engine's self-description for run.json: /v1/models, llama.cpp /props, /version.

    Missing endpoints are simply absent; an unreachable server gives {"reachable": False} (the
    run still goes ahead and records every refusal as data).
    """
    info: dict[str, Any] = {"base_url": base_url}
    with ControlClient(base_url, _headers(api_key), timeout_s) as client:
        for path, key in (("/v1/models", "models"), ("/props", "props"), ("/version", "version")):
            try:
                status, data = client.json("GET", path)
            except (OSError, http.client.HTTPException) as exc:
                # refused, timed out, or something that does not speak HTTP
                info["reachable"] = False
                info["error"] = f"{type(exc).__name__}: {exc}"[:300]
                return info
            if status == 200 and data is not None:
                info[key] = _trim(data)
    info["reachable"] = True
    return info


def _trim(obj: Any) -> Any:
    """Drop bulky fields (chat templates, long strings) from a server's self-description."""
    if isinstance(obj, dict):
        return {k: _trim(v) for k, v in obj.items() if k not in ("chat_template", "tokenizer")}
    if isinstance(obj, list):
        return [_trim(v) for v in obj[:20]]
    if isinstance(obj, str) and len(obj) > 300:
        return obj[:300] + "…"
    return obj


def _positive_int(value: Any) -> int | None:
    """`value` as a context length: a positive whole number, else None (servers send junk too)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 1 or value != int(value):
        return None
    return int(value)


def context_length(info: dict[str, Any], model: str | None = None) -> tuple[int | None, str | None]:
    """The context one request may fill (prompt + output tokens) as the server reports it, and
    where it was read; (None, None) when the server does not say.

    llama.cpp: ``GET /props`` → ``default_generation_settings.n_ctx`` (per slot: the total
    context divided by the parallel slots); newer builds also put it in ``/v1/models`` →
    ``data[].meta.n_ctx``. vLLM and SGLang: ``GET /v1/models`` → ``data[].max_model_len`` of
    the served model (`model`, else the first listed).
    """
    props = info.get("props")
    if isinstance(props, dict):
        settings = props.get("default_generation_settings")
        n_ctx = _positive_int(settings.get("n_ctx")) if isinstance(settings, dict) else None
        if n_ctx:
            return n_ctx, "/props default_generation_settings.n_ctx"
    models = info.get("models")
    data = models.get("data") if isinstance(models, dict) else None
    entries = [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []
    chosen = [m for m in entries if model is not None and m.get("id") == model] or entries[:1]
    for m in chosen:
        length = _positive_int(m.get("max_model_len"))
        if length:
            return length, "/v1/models max_model_len"
        meta = m.get("meta")
        n_ctx = _positive_int(meta.get("n_ctx")) if isinstance(meta, dict) else None
        if n_ctx:
            return n_ctx, "/v1/models meta.n_ctx"
    return None, None


def first_model(info: dict[str, Any]) -> str | None:
    """The first model id /v1/models lists (what to send as "model" when none is given)."""
    models = info.get("models")
    data = models.get("data") if isinstance(models, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    found = data[0].get("id")
    return found if isinstance(found, str) and found else None


def measure_overhead(
    base_url: str,
    endpoint: str,
    model: str | None,
    text: str,
    content_tokens: int,
    api_key: str | None = None,
    timeout_s: float = 60.0,
) -> int | None:
    """Tokens the server adds around a prompt (BOS, chat template): usage.prompt_tokens minus
    the `content_tokens` of `text`. None when the server reports no usage or fails."""
    body = request_body(endpoint, model, text, 1, engine_extras=False)
    try:
        with ControlClient(base_url, _headers(api_key), timeout_s) as client:
            status, raw = client.request("POST", ENDPOINT_PATHS[endpoint], body)
    except (OSError, http.client.HTTPException):
        return None
    if status != 200:
        return None
    parser = SSEParser()
    prompt_tokens = None
    for payload in parser.feed(raw) + parser.close():
        if payload == DONE:
            continue
        with contextlib.suppress(ValueError):
            chunk = interpret(payload)
            if chunk.prompt_tokens is not None:
                prompt_tokens = chunk.prompt_tokens
    return None if prompt_tokens is None else int(prompt_tokens) - content_tokens
