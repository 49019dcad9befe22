"""What the client learns about the target before a run: engine identity and prompt overhead.

Small synchronous control calls (httpx), made before the clock starts, never during the run.
"""

from __future__ import annotations

import contextlib
import http.client
from typing import Any

from burstlab.replay.client import ENDPOINT_PATHS
from burstlab.replay.http import ControlClient
from burstlab.replay.prompts import request_body
from burstlab.replay.sse import DONE, SSEParser, interpret


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
            except OSError:
                info["reachable"] = False
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


def first_model(info: dict[str, Any]) -> str | None:
    """The first model id /v1/models lists (what to send as "model" when none is given)."""
    data = (info.get("models") or {}).get("data") or []
    return data[0].get("id") if data and isinstance(data[0], dict) else None


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
