"""What the instant server says: the toy tokenizer, and answers rendered as SSE chunks (vLLM's
framing, both usage styles, the stream-shaping fault modes) or as one JSON object."""

from __future__ import annotations

import json
import time
import zlib

from burstlab.engines.instant.config import InstantConfig
from burstlab.engines.instant.protocol import LAST_CHUNK, Answer, chunk, sse_head

TOKEN_TEXT = " tok"
DONE = chunk(b"data: [DONE]\n\n")
KEEPALIVE = chunk(b": keep-alive\n\n")


def toy_tokenize(text: str) -> list[int]:
    """The instant server's deterministic tokenizer: one token per whitespace-separated word."""
    return [zlib.crc32(word.encode()) % 32000 for word in text.split()]


def count_prompt_tokens(body: dict) -> int:
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


class Renderer:
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
        return chunk(b"data: " + ((self.prefix[kind] % (rid, now)) + body).encode() + b"\n\n")

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
    ) -> Answer:
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
            bodies[0] += chunk(b'data: {"id":"cmpl-%s","choices":[{"index":0,\n\n' % rid.encode())
        head = sse_head(keep_alive)
        if kind == "chat":
            head += self._event(kind, rid, now, self._choice(kind, None, None, role=True) + "}")
        bodies.insert(0, head)
        gaps = [0.0, first_gap] + [itl] * (n_chunks - 1)
        if fault == "cut":
            keep = 1 + n_chunks // 2  # the head and half the token chunks (none if 1 token)
            return Answer(gaps[:keep], bodies[:keep], tokens[:keep], True, complete=False)
        tail = b""
        if final_chunk:
            text = self._choice(kind, "", "length") + "," + self._usage(prompt_tokens, max_tokens)
            tail += self._event(kind, rid, now, text + "}")
        elif include_usage and fault != "no-usage":
            tail += self._event(kind, rid, now, "]," + self._usage(prompt_tokens, max_tokens) + "}")
        if fault != "no-done":
            tail += DONE
        bodies[-1] += tail + LAST_CHUNK
        return Answer(gaps, bodies, tokens, close_after=not keep_alive, complete=True)

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
