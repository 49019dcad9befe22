"""SSE parsing from raw bytes: every framing quirk engines produce."""

from __future__ import annotations

import pytest

from burstlab.replay.sse import DONE, MalformedEvent, SSEParser, interpret

CHAT = (
    b'data: {"choices":[{"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
    b": keep-alive\n\n"
    b'data: {"choices":[{"delta":{"content":"lo"},"finish_reason":"length"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}\n\n'
    b"data: [DONE]\n\n"
)


def parse_all(raw: bytes, split: int | None = None) -> tuple[list[bytes], SSEParser]:
    p = SSEParser()
    if split is None:
        return p.feed(raw) + p.close(), p
    out: list[bytes] = []
    for i in range(0, len(raw), split):
        out += p.feed(raw[i : i + split])
    return out + p.close(), p


def test_whole_stream_in_one_read():
    payloads, parser = parse_all(CHAT)
    assert len(payloads) == 5
    assert payloads[-1] == DONE
    assert parser.comments == 1


@pytest.mark.parametrize("split", [1, 2, 3, 7, 64])
def test_events_split_across_reads_give_the_same_payloads(split):
    assert parse_all(CHAT, split)[0] == parse_all(CHAT)[0]


@pytest.mark.parametrize("split", [None, 1, 5])
def test_crlf_and_bare_cr_line_ends(split):
    crlf = CHAT.replace(b"\n", b"\r\n")
    cr = CHAT.replace(b"\n", b"\r")
    assert parse_all(crlf, split)[0] == parse_all(CHAT)[0]
    assert parse_all(cr, split)[0] == parse_all(CHAT)[0]


def test_crlf_split_exactly_between_cr_and_lf():
    raw = b'data: {"a":1}\r\n\r\ndata: [DONE]\r\n\r\n'
    p = SSEParser()
    cut = raw.index(b"\r\n") + 1  # ends with a bare CR
    out = p.feed(raw[:cut]) + p.feed(raw[cut:]) + p.close()
    assert out == [b'{"a":1}', DONE]


def test_stream_without_done_and_without_final_blank_line():
    raw = b'data: {"choices":[{"text":"a","finish_reason":"length"}]}\n\ndata: {"x":1}'
    payloads, _ = parse_all(raw)
    assert payloads == [b'{"choices":[{"text":"a","finish_reason":"length"}]}', b'{"x":1}']


def test_multi_line_data_and_other_fields():
    raw = b'event: message\nid: 3\ndata: {"a":\ndata: 1}\nretry: 10\n\n'
    assert parse_all(raw)[0] == [b'{"a":\n1}']


def test_data_without_space_after_colon():
    assert parse_all(b"data:[DONE]\n\n")[0] == [DONE]


def test_interpret_role_only_text_usage_and_completions():
    payloads, _ = parse_all(CHAT)
    role, hel, lo, usage = (interpret(p) for p in payloads[:4])
    assert (role.text_chars, role.finish_reason) == (0, None)
    assert hel.text == "Hel" and hel.text_chars == 3
    assert lo.finish_reason == "length"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.text_chars) == (7, 2, 0)
    comp = interpret(b'{"choices":[{"text":" tok","finish_reason":null}]}')
    assert comp.text_chars == 4


def test_interpret_reasoning_content_counts_as_generated_text():
    c = interpret(b'{"choices":[{"delta":{"reasoning_content":"think"}}]}')
    assert c.text_chars == 5


def test_interpret_empty_delta_and_null_content():
    assert interpret(b'{"choices":[{"delta":{}}]}').text_chars == 0
    assert interpret(b'{"choices":[{"delta":{"content":null}}]}').text_chars == 0


def test_interpret_error_object_and_malformed_json():
    assert interpret(b'{"error":{"message":"overloaded"}}').error == "overloaded"
    with pytest.raises(MalformedEvent, match="malformed SSE"):
        interpret(b'{"choices":[{"delta":{"content":"x"')
    with pytest.raises(MalformedEvent, match="not a JSON object"):
        interpret(b"[1,2]")


AGREEMENT_CASES = [
    b'{"choices":[{"index":0,"delta":{"content":" tok"},"logprobs":null,"finish_reason":null}]}',
    b'{"choices":[{"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
    b'{"choices":[{"text":"a \\"quoted\\" \\u00e9 \\\\ word","finish_reason":null}]}',
    b'{"choices": [{"delta": {"content": "spaced json"}, "finish_reason": null}]}',
    b'{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}',
    b'{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}',
    b'{"choices":[{"delta":{"reasoning_content":"hm","content":null}}]}',
    b'{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"bb"}}]}',
    b'{"choices":[{"delta":{"content":"\\"content\\":\\"inner\\""}}]}',
    b'{"choices":[{"delta":{"content":"emoji \xf0\x9f\x98\x80"}}]}',
    b'{"choices":[]}',
    b'{"error":"boom"}',
]


@pytest.mark.parametrize("payload", AGREEMENT_CASES)
def test_fast_path_agrees_with_full_json_decoding(payload):
    from burstlab.replay.sse import interpret_json

    assert interpret(payload) == interpret_json(payload)


@pytest.mark.parametrize(
    "payload",
    [b'{"choices":[{"delta":{"content":"a\\qb"}}]}', b'{"choices":[{"delta":{"content":"x'],
)
def test_fast_path_sends_broken_payloads_to_the_decoder_which_rejects_them(payload):
    with pytest.raises(MalformedEvent):
        interpret(payload)


@pytest.mark.parametrize(
    "payload",
    [
        *AGREEMENT_CASES,
        b'{"choices": [{"delta": {"content": "x"}, "finish_reason": "length"}]}',
        b'{"choices":[{"text":"","finish_reason":"length"}],"usage":{"completion_tokens":4}}',
    ],
)
def test_hot_path_text_chars_is_none_or_agrees_with_the_decoder(payload):
    from burstlab.replay.sse import interpret_json, text_chars

    full = interpret_json(payload) if payload.startswith(b"{") else None
    fast = text_chars(payload)
    if fast is not None:
        # only plain token chunks: no finish reason, usage or error to lose
        assert fast == full.text_chars
        assert (full.finish_reason, full.completion_tokens, full.error) == (None, None, None)


def test_hot_path_declines_finish_usage_and_spaced_finish():
    from burstlab.replay.sse import text_chars

    assert text_chars(b'{"choices":[{"delta":{"content":"x"},"finish_reason":null}]}') == 1
    assert text_chars(b'{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}') is None
    assert (
        text_chars(b'{"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}]}') is None
    )
    assert text_chars(b'{"choices":[],"usage":{"completion_tokens":3}}') is None
    assert text_chars(b"[DONE]") is None


def test_token_counter_agrees_with_text_chars_on_every_payload_of_a_stream():
    from burstlab.replay.sse import TokenCounter, text_chars

    head = b'{"id":"c1","object":"text_completion","created":1,"choices":[{"index":0,"text":"'
    tail = b'","logprobs":null,"finish_reason":null}]}'
    stream = [
        head + b" tok" + tail,  # learned here
        head + b" other" + tail,  # same shape: counted on the prefix/suffix
        head + b"" + tail,
        head + b"caf\xc3\xa9 \xf0\x9f\x98\x80" + tail,  # UTF-8: decoded alone
        head + b'say \\"hi\\"' + tail,  # escapes: the full scan
        head + b"bad \xff" + tail,  # invalid UTF-8: declined
        head + b"x" + b'","logprobs":null,"finish_reason":"length"}]}',  # finish: declined
        head[:-1] + b'","usage":{"completion_tokens":3},"x":"' + tail,  # usage: declined
        *AGREEMENT_CASES,
        head + b" back" + tail,  # after other shapes were seen
    ]
    counter = TokenCounter()
    for payload in stream:
        assert counter.chars(payload) == text_chars(payload), payload
    assert counter.chars(head + b"caf\xc3\xa9" + tail) == 4
