"""Incremental Server-Sent-Events parsing for OpenAI-compatible streams.

Engines differ in the details a naive `line.startswith("data: ")` loop gets wrong: events split
across TCP reads, CRLF or bare CR line ends, `: keep-alive` comments, multi-line `data:` fields,
a role-only first chunk, empty deltas, `usage` on the last chunk or nowhere, and a final
`data: [DONE]` that some servers (transformers serve) never send. `SSEParser` turns raw bytes
into complete `data` payloads; `interpret` turns one payload into what a request record needs.
Both are pure functions of their input so they are unit-tested with raw bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# json's own (C) string scanner; typeshed's json.decoder stub leaves it out
from json.decoder import scanstring  # pyright: ignore[reportAttributeAccessIssue]
from typing import Any

DONE = b"[DONE]"


class SSEParser:
    """Feed raw response bytes; get back the `data` payload (bytes) of every complete event.

    Follows the WHATWG event-stream rules that matter here: lines end in LF, CRLF or CR; a blank
    line ends an event; lines starting with ``:`` are comments (counted, ignored); several
    ``data:`` lines in one event are joined with LF; other fields (``event:``, ``id:``) are kept
    out of the payload. `close()` returns a last event that the stream ended without a blank line.
    """

    __slots__ = ("_buf", "_data", "comments")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self.comments = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add bytes from one read; return the payloads of the events they complete.

        Complete events are split off at blank lines in one C-level split; an event that is a
        single ``data: …`` line (almost all of them) is taken as is, anything else goes through
        the line rules. The incomplete tail waits for the next read.
        """
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # A CR at the very end may be the first half of a CRLF split across reads.
            keep_cr = buf.endswith(b"\r")
            if keep_cr:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buf += b"\r"
        events = buf.split(b"\n\n")
        self._buf = events.pop()
        out: list[bytes] = []
        for event in events:
            if event[:6] == b"data: " and b"\n" not in event and not self._data:
                out.append(event[6:])
            else:
                for line in event.split(b"\n"):
                    self._line(line, out)
                self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[bytes]) -> None:
        if not line:
            if self._data:
                out.append(b"\n".join(self._data))
                self._data = []
            return
        if line[0] == 0x3A:  # ':' comment / keep-alive
            self.comments += 1
            return
        if line.startswith(b"data:"):
            value = line[5:]
            if value[:1] == b" ":
                value = value[1:]
            self._data.append(value)
        # other fields (event:, id:, retry:) carry nothing a completion record needs

    def close(self) -> list[bytes]:
        """End of stream: flush a final event that had no terminating blank line."""
        out: list[bytes] = []
        rest = self._buf.rstrip(b"\r")
        self._buf = b""
        for line in rest.split(b"\n") if rest else ():
            self._line(line, out)
        if self._data:
            out.append(b"\n".join(self._data))
            self._data = []
        return out


@dataclass(slots=True)
class Chunk:
    """What one streamed JSON event tells a record.

    `text_chars` counts generated characters (content, text or reasoning); 0 for role-only or
    usage-only chunks. `usage` is the server's token accounting when the chunk carries it
    (`completion_tokens` is cumulative: vLLM with ``continuous_usage_stats`` sends it on every
    chunk). `cached_tokens` is how many prompt tokens the server served from its prefix cache
    (tokens): `usage.prompt_tokens_details.cached_tokens` (vLLM with
    ``--enable-prompt-tokens-details``, SGLang, llama.cpp), else llama.cpp's `timings.cache_n`.
    """

    text_chars: int = 0
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    cached_tokens: int | None = None


class MalformedEvent(ValueError):
    """A data payload that is neither `[DONE]` nor a JSON object."""


def _text_of(choice: dict[str, Any]) -> str:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        parts = [delta.get("content"), delta.get("reasoning_content"), delta.get("reasoning")]
        return "".join(p for p in parts if isinstance(p, str))
    text = choice.get("text")
    return text if isinstance(text, str) else ""


#: Keys whose presence sends a payload to the full JSON decoder.
_SLOW = (b'"usage"', b'"error"', b"reasoning")
_TEXT_KEYS = (b'"content":"', b'"text":"', b'"content": "', b'"text": "')


def _text_at(payload: bytes) -> int | None:
    """Offset just after the opening quote of the chunk's only text string, else None."""
    for key in _TEXT_KEYS:
        at = payload.find(key)
        if at >= 0:
            end = at + len(key)
            return None if payload.find(key, end) >= 0 else end  # several (n > 1): decode
    return None


def text_chars(payload: bytes) -> int | None:
    """Generated characters in a plain token chunk, or None when the payload needs `interpret`.

    The client's per-event hot path: a token chunk with no usage, no error, no reasoning and no
    finish reason (most events) costs a few byte scans instead of a JSON parse; the text is
    counted on its bytes (ASCII) or decoded alone (other UTF-8), and only a text with escapes
    goes through json's string scanner. Tested to agree with `interpret_json` on every payload
    it accepts.
    """
    if payload[:1] != b"{" or payload[-1:] != b"}":
        return None
    for marker in _SLOW:
        if marker in payload:
            return None
    fin = payload.find(b'"finish_reason"')
    if fin >= 0 and payload[fin + 16 : fin + 22].lstrip()[:4] != b"null":
        return None
    end = _text_at(payload)
    if end is None:
        return None
    close = payload.find(b'"', end)
    if close < 0:
        return None
    text = payload[end:close]
    if b"\\" not in text:  # no escapes: count characters on the bytes, no decoding
        if text.isascii():
            return close - end
        try:
            return len(text.decode())
        except UnicodeDecodeError:  # the decoder reports it properly
            return None
    try:
        return len(scanstring(payload[end:].decode(), 0)[0])
    except ValueError:  # bad escape or UTF-8: the decoder reports it properly
        return None


class TokenCounter:
    """`text_chars` for the events of one stream, learning their shape from the first.

    A server frames every plain token event of one stream identically: the same bytes before the
    text (id, created, model, index) and after it (logprobs, `"finish_reason":null`). Once one
    event passed `text_chars`, an event with exactly that prefix and suffix around a text
    without quotes or backslashes is the same JSON with another string, so its characters are
    counted with two comparisons and no scan; anything else goes through `text_chars` (which
    then learns the new shape). Tested to agree with `text_chars` on every payload.
    """

    __slots__ = ("_min", "_plen", "_prefix", "_slen", "_suffix")

    def __init__(self) -> None:
        self._prefix = b"\0"  # matches no event until one is learned
        self._suffix = b'"'
        self._plen = self._slen = self._min = 1

    def chars(self, payload: bytes) -> int | None:
        """Generated characters in a plain token chunk, else None (see `text_chars`)."""
        if (
            payload.startswith(self._prefix)
            and payload.endswith(self._suffix)
            and len(payload) >= self._min
        ):
            text = payload[self._plen : -self._slen]
            if b'"' not in text and b"\\" not in text:
                if text.isascii():
                    return len(text)
                try:
                    return len(text.decode())
                except UnicodeDecodeError:
                    return None
        n = text_chars(payload)
        if n is not None:
            self._learn(payload)
        return n

    def _learn(self, payload: bytes) -> None:
        start = _text_at(payload)
        if start is None:
            return
        close = payload.find(b'"', start)
        if close < 0 or b"\\" in payload[start:close]:
            return  # the text has escapes: its closing quote is not the first one
        self._prefix, self._suffix = payload[:start], payload[close:]
        self._plen, self._slen = start, len(payload) - close  # the suffix holds the quote: ≥ 1
        self._min = self._plen + self._slen


def interpret(payload: bytes) -> Chunk:
    """Decode one non-[DONE] payload of a chat or completions stream.

    Raises MalformedEvent when the payload is not a JSON object; an ``{"error": …}`` object that
    some servers send mid-stream becomes `Chunk.error`. (`text_chars` is the fast path for
    plain token chunks; this is the full answer for any payload.)
    """
    if text_chars(payload) is not None:
        text = scanstring(payload[_text_at(payload) :].decode(), 0)[0]
        return Chunk(text_chars=len(text), text=text)
    return interpret_json(payload)


def interpret_json(payload: bytes) -> Chunk:
    """`interpret` by full JSON decoding (the reference the fast path must agree with)."""
    try:
        obj = json.loads(payload)
    except ValueError as exc:
        raise MalformedEvent(f"malformed SSE data {payload[:80]!r}: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedEvent(f"malformed SSE data {payload[:80]!r}: not a JSON object")
    chunk = Chunk()
    err = obj.get("error")
    if err:
        chunk.error = str(err.get("message", err) if isinstance(err, dict) else err)[:500]
    choices = obj.get("choices")
    if choices:
        choice = choices[0]
        if isinstance(choice, dict):
            text = _text_of(choice)
            chunk.text = text
            chunk.text_chars = len(text)
            chunk.finish_reason = choice.get("finish_reason")
    usage = obj.get("usage")
    if isinstance(usage, dict):
        chunk.prompt_tokens = usage.get("prompt_tokens")
        chunk.completion_tokens = usage.get("completion_tokens")
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            chunk.cached_tokens = _count(details.get("cached_tokens"))
    if chunk.cached_tokens is None:
        timings = obj.get("timings")  # llama.cpp: on the last chunk, or every one (per token)
        if isinstance(timings, dict):
            chunk.cached_tokens = _count(timings.get("cache_n"))
    return chunk


def _count(value: object) -> int | None:
    """A token count from JSON (a non-negative whole number), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
