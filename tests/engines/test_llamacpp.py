"""The real llama.cpp engine: the random model builds and loads, `max_tokens` fixes the output
length exactly on both endpoints, slots batch concurrent requests, /metrics counts what was sent."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
from concurrent.futures import ThreadPoolExecutor

import gguf
import pytest

from burstlab.engines import local
from burstlab.engines.process import fetch_json, prometheus_counters
from burstlab.engines.tinymodel import SIZES, build_tiny_model, cached_model, vocabulary
from burstlab.errors import EngineError, InputError

pytestmark = pytest.mark.engine


def completion(engine, post, prompt: str, max_tokens: int):
    body = {
        "model": engine.model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "stream": True,
        "ignore_eos": True,
        "stream_options": {"include_usage": True},
    }
    return post(engine.base_url, "/v1/completions", body)


def test_tiny_model_file_has_llama_layout(tmp_path):
    path = build_tiny_model(tmp_path / "m.gguf", "tiny")
    reader = gguf.GGUFReader(path)
    shape = SIZES["tiny"]
    names = {t.name for t in reader.tensors}
    assert len(names) == 3 + 9 * shape.n_layer
    assert {"token_embd.weight", "output.weight", "blk.1.ffn_down.weight"} <= names
    pieces, _, types = vocabulary()
    assert len(pieces) == len(set(pieces)) > 1000
    assert types.count(int(gguf.TokenType.BYTE)) == 256
    field = reader.fields["llama.block_count"]
    assert int(field.parts[field.data[0]][0]) == shape.n_layer


def test_model_is_deterministic(tmp_path):
    a = build_tiny_model(tmp_path / "a.gguf", "tiny").read_bytes()
    assert build_tiny_model(tmp_path / "b.gguf", "tiny").read_bytes() == a
    assert build_tiny_model(tmp_path / "c.gguf", "tiny", seed=1).read_bytes() != a


def test_cached_model_is_built_once(data_dir):
    first = cached_model("tiny")
    stamp = first.stat().st_mtime_ns
    assert first.parent == data_dir / "models"
    assert cached_model("tiny").stat().st_mtime_ns == stamp


def test_unknown_size_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="unknown model size 'huge'"):
        build_tiny_model(tmp_path / "m.gguf", "huge")


@pytest.mark.parametrize("max_tokens", [1, 17, 64])
def test_completions_stream_exact_token_count(engine, post, max_tokens):
    resp = completion(engine, post, f"replay request with {max_tokens} tokens", max_tokens)
    assert resp.status == 200
    assert resp.sse_data()[-1] == "[DONE]"
    chunks = resp.sse_json()
    assert chunks[-1]["usage"]["completion_tokens"] == max_tokens
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    text_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["text"]]
    assert len(text_chunks) == max_tokens  # one token per chunk, never empty: no EOS, no bytes
    text = "".join(c["choices"][0]["text"] for c in chunks)
    assert text.isascii()


def test_chat_stream_role_chunk_and_usage_chunk(engine, post):
    body = {
        "model": engine.model,
        "messages": [{"role": "user", "content": "Tell me about bursts."}],
        "max_tokens": 23,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    resp = post(engine.base_url, "/v1/chat/completions", body)
    assert resp.status == 200
    chunks = resp.sse_json()
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 23
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) == 23
    assert resp.sse_data()[-1] == "[DONE]"


def test_tokenize_matches_usage_prompt_tokens(engine, post):
    prompt = "the model serves a burst of requests from the trace"
    tokens = fetch_json(engine.base_url + "/tokenize", {"content": prompt})["tokens"]
    usage = completion(engine, post, prompt, 2).sse_json()[-1]["usage"]
    assert usage["prompt_tokens"] == len(tokens) + 1  # llama.cpp adds BOS when generating


def test_models_lists_alias(engine):
    models = fetch_json(engine.base_url + "/v1/models")
    assert models["data"][0]["id"] == engine.model


def test_concurrent_requests_are_batched_and_counted(engine, post):
    before = prometheus_counters(engine.base_url)
    n, max_tokens = 8, 96
    prompts = [f"request number {i} of a concurrent burst" for i in range(n)]
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda p: completion(engine, post, p, max_tokens), prompts))
    after = prometheus_counters(engine.base_url)
    usages = [r.sse_json()[-1]["usage"] for r in results]
    assert [u["completion_tokens"] for u in usages] == [max_tokens] * n

    def delta(name):
        return after[f"llamacpp:{name}"] - before[f"llamacpp:{name}"]

    assert delta("tokens_predicted_total") == n * max_tokens
    prompt_sum = sum(u["prompt_tokens"] for u in usages)
    # usage.prompt_tokens includes prefix-cache hits; llama.cpp counts those separately.
    assert delta("prompt_tokens_total") + delta("prompt_tokens_cached_total") == prompt_sum
    # Batching: with 4 slots decoding together, one decode step yields several tokens; strictly
    # serial serving would need one step per token.
    assert delta("n_decode_total") < 0.6 * n * max_tokens


def test_start_errors_are_clear(tmp_path):
    with pytest.raises(InputError, match="model file not found"):
        local(gguf=tmp_path / "missing.gguf", data_dir=tmp_path)
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(EngineError, match="exited with code"):
        local(gguf=bogus, data_dir=tmp_path, timeout_s=20)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(EngineError, match=r"cannot serve on 127\.0\.0\.1"):
            local(port=taken.getsockname()[1], data_dir=tmp_path)


def test_stop_ends_the_process(tmp_path):
    model = build_tiny_model(tmp_path / "m.gguf", "tiny")
    handle = local(gguf=model, parallel=1, ctx_per_slot=256, data_dir=tmp_path)
    assert fetch_json(handle.base_url + "/health")["status"] == "ok"
    handle.stop()
    assert not handle.alive
    assert handle.process.returncode is not None
    handle.stop()  # idempotent


CLI_APP = """
import typer
from burstlab.engines.cli import register
app = typer.Typer()
@app.callback()
def root(): pass
register(app)
app()
"""


@pytest.mark.parametrize("extra", [[], ["--instant"]])
def test_engine_cli_serves_until_interrupted(extra):
    """`burstlab engine` prints a working URL, serves real requests, and Ctrl-C stops it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_APP, "engine", "--port", "0", "--parallel", "2", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"COLUMNS": "300"},
    )
    try:
        url = None
        for line in proc.stdout:
            found = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "no URL printed"
        body = {"prompt": "hi", "max_tokens": 5, "stream": False}
        answer = fetch_json(url + "/v1/completions", body)
        assert answer["usage"]["completion_tokens"] == 5
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        with pytest.raises(urllib.error.URLError):
            fetch_json(url + "/health", timeout_s=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
