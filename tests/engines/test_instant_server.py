"""The instant server: SSE framing like vLLM/llama.cpp, exact token counts, and each fault mode's
documented wire behaviour, asserted on raw bytes from a plain socket."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from burstlab.engines.instant import (
    FAULTS,
    instant_server,
    measure_throughput,
    toy_tokenize,
)
from burstlab.errors import UsageError

TERMINATOR = b"\r\n0\r\n\r\n"


def request_bytes(path: str, body: dict, fault: str | None = None, close: bool = True) -> bytes:
    payload = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(payload)}\r\n"
    if fault:
        head += f"X-Burstlab-Fault: {fault}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + payload


def exchange(port: int, data: bytes, timeout_s: float = 3.0, until: bytes | None = None):
    """Send raw bytes, read until EOF / reset / timeout (or `until` appears) → (bytes, how)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        got = b""
        try:
            while True:
                more = sock.recv(65536)
                if not more:
                    return got, "eof"
                got += more
                if until is not None and got.endswith(until):
                    return got, "until"
        except ConnectionResetError:
            return got, "reset"
        except TimeoutError:
            return got, "timeout"


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body → (payload, saw the terminating zero-size chunk)."""
    out, pos = b"", 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return out, False
        size = int(body[pos:eol], 16)
        if size == 0:
            return out, True
        out += body[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


def events(payload: bytes) -> list[str]:
    return [e for e in payload.decode().split("\n\n") if e]


def stream_body(max_tokens: int, **extra) -> dict:
    body = {"model": "m", "prompt": "one two three four five", "max_tokens": max_tokens}
    return body | {"stream": True, "stream_options": {"include_usage": True}} | extra


def completions(port: int, max_tokens: int, fault: str | None = None, **kw):
    raw, how = exchange(
        port, request_bytes("/v1/completions", stream_body(max_tokens), fault), **kw
    )
    return raw, how


@pytest.fixture(scope="module")
def server():
    """One default server shared by the tests that only read answers (counters: use deltas)."""
    with instant_server() as handle:
        yield handle


def test_chat_stream_framing_matches_vllm(server):
    body = {
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    raw, how = exchange(server.port, request_bytes("/v1/chat/completions", body))
    status, headers, chunked = split_response(raw)
    assert (status, how) == (200, "eof")
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["transfer-encoding"] == "chunked"
    payload, complete = dechunk(chunked)
    assert complete and raw.endswith(b"data: [DONE]\n\n" + TERMINATOR)
    evs = events(payload)
    assert evs[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in evs[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert content == [" tok"] * 5
    assert [c["choices"][0]["finish_reason"] for c in chunks[1:-1]] == [None] * 4 + ["length"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "total_tokens": 7, "completion_tokens": 5}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


def test_chunk_tokens_groups_tokens_and_text_retokenizes(instant_server):
    server = instant_server(chunk_tokens=4)
    raw, _ = completions(server.port, 10)
    payload, complete = dechunk(split_response(raw)[2])
    assert complete
    chunks = [json.loads(e[6:]) for e in events(payload)[:-1]]
    texts = [c["choices"][0]["text"] for c in chunks if c["choices"]]
    assert [len(toy_tokenize(t)) for t in texts] == [4, 4, 2]
    assert chunks[-1]["usage"]["completion_tokens"] == 10
    assert chunks[-1]["usage"]["prompt_tokens"] == 5


def test_usage_final_chunk_style_like_llamacpp(instant_server):
    server = instant_server(usage_style="final-chunk")
    raw, _ = completions(server.port, 3)
    chunks = [json.loads(e[6:]) for e in events(dechunk(split_response(raw)[2])[0])[:-1]]
    assert len(chunks) == 4
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "text": "",
        "logprobs": None,
        "finish_reason": "length",
    }
    assert chunks[-1]["usage"]["completion_tokens"] == 3


def test_no_usage_unless_asked_and_non_streaming_json(server):
    body = {"prompt": "a b", "max_tokens": 2, "stream": True}
    raw, _ = exchange(server.port, request_bytes("/v1/completions", body))
    assert b"usage" not in raw
    raw, _ = exchange(server.port, request_bytes("/v1/completions", {"prompt": "a b c"}))
    status, headers, data = split_response(raw)
    answer = json.loads(data)
    assert status == 200 and int(headers["content-length"]) == len(data)
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 19, "completion_tokens": 16}
    assert answer["choices"][0]["text"] == " tok" * 16


def test_bad_requests_get_400(server):
    for body in ({"prompt": "x", "max_tokens": 0}, {"prompt": "x", "max_tokens": "9"}, [1]):
        raw, _ = exchange(server.port, request_bytes("/v1/completions", body))
        status, _, data = split_response(raw)
        assert status == 400 and json.loads(data)["error"]["type"] == "invalid_request_error"
    body = {"messages": [{"role": "user", "content": "a b"}], "max_completion_tokens": 3}
    raw, _ = exchange(server.port, request_bytes("/v1/chat/completions", body))
    assert json.loads(split_response(raw)[2])["usage"]["completion_tokens"] == 3


def test_control_endpoints(server, post):
    raw, _ = exchange(server.port, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert split_response(raw)[0] == 200 and raw.endswith(b'{"status":"ok"}')
    raw, _ = exchange(server.port, b"GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert json.loads(split_response(raw)[2])["data"][0]["id"] == "burstlab-instant"
    tok = post(server.base_url, "/tokenize", {"content": "the quick  brown fox"})
    assert tok.status == 200 and json.loads(tok.body)["count"] == 4
    tok = post(server.base_url, "/tokenize", {"model": "m", "prompt": "vllm style"})
    assert json.loads(tok.body)["tokens"] == toy_tokenize("vllm style")
    assert post(server.base_url, "/nope", {}).status == 404


def test_keep_alive_and_pipelining(server):
    one = request_bytes("/v1/completions", stream_body(2), close=False)
    last = request_bytes("/v1/completions", stream_body(3), close=True)
    raw, how = exchange(server.port, one + one + last)
    assert how == "eof"
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    assert raw.count(b"data: [DONE]") == 3
    assert raw.count(b'"completion_tokens":2') == 2 and raw.count(b'"completion_tokens":3') == 1


def test_fault_refuse_resets_connection(server):
    raw, how = completions(server.port, 4, "refuse")
    assert (raw, how) == (b"", "reset")


@pytest.mark.parametrize(("fault", "status"), [("http500", 500), ("http429", 429)])
def test_fault_http_errors_keep_connection(server, fault, status):
    first = request_bytes("/v1/completions", stream_body(2), fault, close=False)
    second = request_bytes("/v1/completions", stream_body(2))
    raw, how = exchange(server.port, first + second)
    code, headers, rest = split_response(raw)
    assert code == status and headers["content-type"] == "application/json"
    error = json.loads(rest[: int(headers["content-length"])])
    assert error["error"]["code"] == status
    assert ("retry-after" in headers) == (status == 429)
    assert raw.count(b"data: [DONE]") == 1 and how == "eof"  # second request served normally


def test_fault_hang_never_answers(server):
    t0 = time.perf_counter()
    raw, how = completions(server.port, 4, "hang", timeout_s=0.5)
    assert (raw, how) == (b"", "timeout")
    assert time.perf_counter() - t0 >= 0.5


def test_fault_cut_stops_mid_body(server):
    raw, how = completions(server.port, 10, "cut")
    status, _, chunked = split_response(raw)
    payload, complete = dechunk(chunked)
    assert (status, how, complete) == (200, "eof", False)
    assert not raw.endswith(TERMINATOR)
    assert payload.count(b'"text":" tok"') == 5
    assert b"[DONE]" not in payload and b"usage" not in payload


def test_fault_malformed_line(server):
    raw, _ = completions(server.port, 3, "malformed")
    evs = events(dechunk(split_response(raw)[2])[0])
    bad = []
    for e in evs[:-1]:
        try:
            json.loads(e[6:])
        except json.JSONDecodeError:
            bad.append(e)
    assert len(bad) == 1 and evs.index(bad[0]) == 1
    assert evs[-1] == "data: [DONE]"
    assert b'"completion_tokens":3' in raw


def test_fault_no_done_ends_cleanly(server):
    raw, how = completions(server.port, 3, "no-done")
    payload, complete = dechunk(split_response(raw)[2])
    assert complete and how == "eof"
    assert b"[DONE]" not in payload
    assert json.loads(events(payload)[-1][6:])["usage"]["completion_tokens"] == 3


def test_fault_no_usage(server):
    raw, _ = completions(server.port, 3, "no-usage")
    payload, complete = dechunk(split_response(raw)[2])
    assert complete and b"usage" not in payload and events(payload)[-1] == "data: [DONE]"
    assert payload.count(b'"text":" tok"') == 3


def test_fault_keepalive_comments_and_empty_deltas(server):
    raw, _ = completions(server.port, 6, "keepalive-comments")
    payload, _ = dechunk(split_response(raw)[2])
    assert events(payload).count(": keep-alive") == 6
    assert payload.count(b'"text":" tok"') == 6
    raw, _ = completions(server.port, 6, "empty-deltas")
    payload, _ = dechunk(split_response(raw)[2])
    assert payload.count(b'"text":""') == 6 and payload.count(b'"text":" tok"') == 6


def test_fault_slow_and_delays(instant_server):
    server = instant_server(slow_itl_s=0.04)
    t0 = time.perf_counter()
    raw, _ = completions(server.port, 5, "slow")
    assert time.perf_counter() - t0 >= 5 * 0.04
    assert raw.count(b'"text":" tok"') == 5
    delayed = instant_server(delay_s=0.15, itl_s=0.01)
    with socket.create_connection(("127.0.0.1", delayed.port), timeout=3) as sock:
        t0 = time.perf_counter()
        sock.sendall(request_bytes("/v1/completions", stream_body(4)))
        first = sock.recv(65536)
        t_head = time.perf_counter() - t0
        rest = b""
        while b"text" not in rest:
            rest += sock.recv(65536)
        t_token = time.perf_counter() - t0
    assert first.startswith(b"HTTP/1.1 200 OK") and b'"text"' not in first
    assert t_head < 0.1 <= 0.15 <= t_token + 0.005
    t0 = time.perf_counter()  # not streamed: the whole answer after delay + 3 gaps
    raw, _ = exchange(
        delayed.port, request_bytes("/v1/completions", {"prompt": "a", "max_tokens": 4})
    )
    assert time.perf_counter() - t0 >= 0.15 + 3 * 0.01 - 0.005
    assert json.loads(split_response(raw)[2])["usage"]["completion_tokens"] == 4


def test_unknown_fault_is_rejected(server, instant_server):
    raw, _ = completions(server.port, 2, "explode")
    assert split_response(raw)[0] == 400 and b"explode" in raw
    with pytest.raises(UsageError, match="unknown fault mode"):
        instant_server(faults={"explode": 0.1})
    with pytest.raises(UsageError, match="sum to"):
        instant_server(faults={"cut": 0.7, "hang": 0.5})


def test_fault_mix_is_seeded_and_counted(instant_server):
    server = instant_server(faults={"http500": 0.3, "no-done": 0.2}, seed=7)
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
        one = request_bytes("/v1/completions", stream_body(2), close=False)
        codes = []
        for _ in range(200):
            sock.sendall(one)
            got = b""
            while not (got.endswith(TERMINATOR) or (b"HTTP/1.1 500" in got and got.endswith(b"}"))):
                got += sock.recv(65536)
            codes.append(int(got[9:12]))
    metrics = server.metrics()
    n500 = codes.count(500)
    assert metrics['burstlab_instant_faults_total{fault="http500"}'] == n500
    assert 40 <= n500 <= 80  # binomial(200, 0.3): mean 60, sd 6.5
    assert 20 <= metrics['burstlab_instant_faults_total{fault="no-done"}'] <= 60
    assert metrics['burstlab_instant_requests_total{endpoint="completions"}'] == 200
    assert metrics["burstlab_instant_completion_tokens_total"] == 2 * (200 - n500)
    again = instant_server(faults={"http500": 0.3, "no-done": 0.2}, seed=7)
    codes_again = [split_response(completions(again.port, 2)[0])[0] for _ in range(len(codes))]
    assert codes_again == codes


def test_stopped_server_refuses_connections(instant_server):
    server = instant_server()
    server.stop()
    assert not server.alive
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_workers_share_port_and_metrics(instant_server):
    server = instant_server(workers=2)
    for _ in range(60):  # a fresh connection each, so SO_REUSEPORT spreads them
        raw, _ = completions(server.port, 3)
        assert raw.endswith(TERMINATOR)
    metrics = server.metrics()
    assert metrics['burstlab_instant_requests_total{endpoint="completions"}'] == 60
    assert metrics["burstlab_instant_completion_tokens_total"] == 180
    per_worker = [
        metrics[f'burstlab_instant_worker_generations_total{{worker="{w}"}}'] for w in (0, 1)
    ]
    assert sum(per_worker) == 60 and min(per_worker) > 0  # both processes served


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to cost the server alone."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_throughput_sanity(server):
    """Server CPU per streamed 16-token request must allow ≥ 2,000 req/s on one core."""
    tokens_before = server.metrics()["burstlab_instant_completion_tokens_total"]
    before = _cpu_seconds(server.process.pid)
    result = measure_throughput(server.base_url, requests=4000, connections=16)
    cpu = _cpu_seconds(server.process.pid) - before
    assert result["requests"] == 4000
    assert cpu / 4000 < 1 / 2000, f"server used {cpu:.2f} CPU s for 4000 requests"
    tokens = server.metrics()["burstlab_instant_completion_tokens_total"] - tokens_before
    assert tokens == 4000 * 16


def test_every_fault_has_a_test():
    tested = {
        "refuse", "http500", "http429", "hang", "cut", "malformed", "no-done", "no-usage",
        "keepalive-comments", "slow", "empty-deltas",
    }  # fmt: skip
    assert set(FAULTS) == tested


def test_cli_fault_mix_is_one_line_error():
    from typer.testing import CliRunner

    from burstlab.cli import app

    bad = CliRunner().invoke(app, ["engine", "--instant", "--port", "0", "--faults", "cut"])
    assert bad.exit_code == 2
    assert "error: --faults: expected MODE=PROBABILITY, found 'cut'" in bad.output
    unknown = CliRunner().invoke(app, ["engine", "--instant", "--port", "0", "--faults", "boom=1"])
    assert unknown.exit_code == 2 and "--faults: unknown fault mode(s) ['boom']" in unknown.output


def test_child_process_starts_without_warnings(capfd):
    """The child runs as `python -m burstlab.engines.instant` (the package's `__main__`): no
    runpy "found in sys.modules" RuntimeWarning, nothing at all on its stderr."""
    capfd.readouterr()
    with instant_server(workers=2) as srv:
        raw, _ = completions(srv.port, 2, until=TERMINATOR)
        assert raw.endswith(TERMINATOR)
    err = capfd.readouterr().err
    assert "RuntimeWarning" not in err and "found in sys.modules" not in err
    assert err == ""


def test_burstlab_engine_instant_stops_on_ctrl_c():
    """`burstlab engine --instant --port 0` prints its URL, serves, and a terminal Ctrl-C (SIGINT
    to the whole process group, the child server included) stops both quietly."""
    argv = [sys.executable, "-c", "from burstlab.cli import main; main()"]
    proc = subprocess.Popen(
        [*argv, "engine", "--instant", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"COLUMNS": "300"},
        start_new_session=True,
    )
    try:
        url = None
        for line in proc.stdout:
            found = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "no URL printed"
        with urllib.request.urlopen(url + "/health", timeout=5) as resp:
            assert json.loads(resp.read()) == {"status": "ok"}
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert "Traceback" not in err and "Warning" not in err
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
