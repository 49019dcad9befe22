"""Prefix-cache truth per request and the client's output-token count from continuous usage.

Hand-made SSE bodies in the shapes llama.cpp (final-chunk usage with `prompt_tokens_details`
and `timings.cache_n`) and vLLM (`continuous_usage_stats`, `cached_tokens` on the usage chunk)
send, served by a canned HTTP server on 127.0.0.1 to the real client; the records, the
intended cached tokens of the trace's hash_ids and the summary's `cache` block are checked.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import polars as pl
import pytest
from aiohttp import web

from burstlab.replay.client import ClientOptions, Plan, ReplayClient
from burstlab.replay.metrics import cache_truth, summarize
from burstlab.replay.prompts import PromptBuilder, intended_cached, request_body
from burstlab.replay.records import LATER_COLUMNS, RECORD_SCHEMA, RecordWriter, read_records
from burstlab.replay.sse import interpret, interpret_json
from burstlab.replay.summary import CACHE_MISS_FRACTION, RunSummary, read_summary


def sse(*events: dict | str) -> bytes:
    """An SSE body: one `data:` event per JSON object (or raw string), then [DONE]."""
    out = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return "".join(out).encode() + b"data: [DONE]\n\n"


def text(t: str, finish: str | None = None, usage: dict | None = None, **extra) -> dict:
    """A /v1/completions chunk."""
    event: dict = {"id": "x", "choices": [{"index": 0, "text": t, "finish_reason": finish}]}
    if usage is not None:
        event["usage"] = usage
    return {**event, **extra}


def usage(completion: int, prompt: int = 40, cached: int | None = None) -> dict:
    out: dict = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


#: llama.cpp /v1/completions: text chunks, then an empty-text chunk with finish, usage, timings
LLAMACPP = sse(
    text("ab"), text("c"), text(" d"),
    text("", "length", usage(3, 602, 601),
         timings={"cache_n": 601, "prompt_n": 1, "predicted_n": 3}),
)  # fmt: skip
#: an older llama.cpp: no prompt_tokens_details, the cache count only in timings
LLAMACPP_TIMINGS = sse(text("ab"), text("", "length", usage(1, 50), timings={"cache_n": 17}))
#: vLLM with continuous_usage_stats: cumulative completion_tokens on every chunk; a token that
#: completes no character ("" text), two tokens merged into one chunk, a finish chunk with its
#: own token, then the usage-only chunk with the prompt details
VLLM = sse(
    text("a", usage=usage(1)),
    text("", usage=usage(2)),
    text("é!", usage=usage(4)),
    text("", "length", usage(5)),
    {"id": "x", "choices": [], "usage": usage(5, 40, 32)},
)  # fmt: skip
#: a server that reports no cached tokens at all (OpenAI without details, the instant server)
PLAIN = sse(text("a"), text("b"), {"id": "x", "choices": [], "usage": usage(2, 40)})


def test_interpret_reads_cached_tokens_from_usage_or_llamacpp_timings():
    last = LLAMACPP.split(b"\n\n")[3][6:]
    assert interpret(last).cached_tokens == 601
    timings_only = LLAMACPP_TIMINGS.split(b"\n\n")[1][6:]
    assert interpret(timings_only).cached_tokens == 17
    vllm_usage = VLLM.split(b"\n\n")[4][6:]
    c = interpret(vllm_usage)
    assert (c.cached_tokens, c.prompt_tokens, c.completion_tokens) == (32, 40, 5)
    assert interpret(PLAIN.split(b"\n\n")[2][6:]).cached_tokens is None
    # per-token timings on a plain chunk (llama.cpp timings_per_token) and bad values
    per_token = json.dumps(text("x", timings={"cache_n": 9, "prompt_n": 3})).encode()
    assert interpret(per_token).text == "x"
    assert interpret_json(per_token).cached_tokens == 9
    for bad in (-1, "12", True, 1.5, None):
        payload = json.dumps(text("", "stop", {**usage(1), "prompt_tokens_details": {
            "cached_tokens": bad}})).encode()  # fmt: skip
        assert interpret(payload).cached_tokens is None, bad


async def _serve_and_replay(bodies: list[bytes], plan: Plan, folder: Path) -> None:
    """Serve bodies[i] to the i-th request (in arrival order) and replay `plan` against it."""
    served = iter(bodies)

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(next(served))
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/completions", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        client = ReplayClient(
            plan, ClientOptions(url=f"http://127.0.0.1:{port}"), RecordWriter(folder / "records")
        )
        await client.run()
    finally:
        await runner.cleanup()


def plan(n: int, intended: list[int | None] | None) -> Plan:
    body = request_body("completions", None, " a b c", 5)
    return Plan(
        req_id=list(range(n)), intended_s=[0.01 * i for i in range(n)], bodies=[body] * n,
        input_tokens=[40] * n, prompt_tokens_client=[40] * n, output_tokens_target=[5] * n,
        session_id=[None] * n, turn=[None] * n, follows=[-1] * n, think_s=[None] * n,
        intended_cached=intended,
    )  # fmt: skip


def test_records_carry_server_cache_hits_intended_hits_and_continuous_token_counts(tmp_path):
    bodies = [LLAMACPP, LLAMACPP_TIMINGS, VLLM, PLAIN]
    asyncio.run(_serve_and_replay(bodies, plan(4, [0, 20, 32, None]), tmp_path))
    rec = read_records(tmp_path)
    assert rec["ok"].all(), rec["error"].to_list()
    assert rec["prompt_tokens_cached"].to_list() == [601, 17, 32, None]
    assert rec["prompt_tokens_intended_cached"].to_list() == [0, 20, 32, None]
    # llama.cpp and the plain server: one token per text chunk, the final usage is no arrival
    assert rec["chunk_chars"].to_list()[0] == [2, 1, 2]
    assert rec["chunk_tokens"].to_list()[0] == [1, 1, 1]
    assert rec["output_tokens_client"].to_list()[0::3] == [3, 2]
    # vLLM continuous usage: 4 token arrivals (one with no text, one with 2 tokens), 5 tokens
    vllm = rec.row(2, named=True)
    assert vllm["chunk_chars"] == [1, 0, 2, 0]
    assert vllm["chunk_tokens"] == [1, 1, 2, 1]
    assert vllm["output_tokens_client"] == vllm["output_tokens_server"] == 5
    assert vllm["first_token_s"] == vllm["chunk_times_s"][0]

    s = summarize(rec)
    cache = s.cache
    assert cache is not None
    assert (cache.requests, cache.intended_reported, cache.observed_reported) == (4, 3, 3)
    # token-weighted over the requests that have the number: prompt tokens 602 + 50 + 40
    assert cache.intended_cached_tokens == 52 and cache.observed_cached_tokens == 650
    assert cache.intended_hit_rate == pytest.approx(52 / 692)
    assert cache.observed_hit_rate == pytest.approx(650 / 692)
    # meant to hit: 20 (got 17 ≥ 10) and 32 (got 32): no miss
    assert (cache.intended_requests, cache.missed_requests, cache.missed_share) == (2, 0, 0.0)
    assert s.tokens.output_mismatch_rate == 0.0


def test_continuous_usage_chat_role_chunk_is_no_token():
    """vLLM chat sends a role-only first chunk with completion_tokens 0: not a token arrival."""
    from burstlab.replay.client import ReplayClient, _Attempt

    r = _Attempt(0, 0.0, 0.0)
    events = [
        {"choices": [{"delta": {"role": "assistant", "content": ""}}], "usage": usage(0)},
        {"choices": [{"delta": {"content": "hi"}}], "usage": usage(1)},
        {"choices": [{"delta": {"content": ""}, "finish_reason": "length"}], "usage": usage(2)},
        {"choices": [], "usage": usage(2, 40, 16)},
    ]
    for t, e in enumerate(events):
        assert not ReplayClient._event(r, json.dumps(e).encode(), float(t))
    assert list(r.times) == [1.0, 2.0] and r.first_token == 1.0
    assert list(r.chars) == [2, 0] and list(r.tokens or ()) == [1, 1]
    assert (r.completion_srv, r.cached_srv, r.finish) == (2, 16, "length")


def test_intended_cached_counts_the_leading_run_of_blocks_sent_before():
    hash_ids = [[0, 1, 2], [0, 1, 5], [0, 9], [7, 0], None, [0, 1, 2, 3], [3]]
    lengths = [1100, 1536, 512, 1024, 300, 2000, 100]
    # block size 512: request 0 sends blocks 0, 1 (full) and 76 tokens of block 2
    assert intended_cached(hash_ids, lengths) == [
        0,  # nothing sent before
        1024,  # blocks 0 and 1 (block 5 is new)
        512,  # block 0; its 512 tokens are the whole prompt
        0,  # starts with a new block: no leading run
        None,  # no hash_ids
        1024 + 76,  # blocks 0, 1, then only the 76 tokens of block 2 request 0 sent
        100,  # block 3: request 5 sent 2000 - 1536 = 464 tokens of it, this prompt is 100
    ]
    # a prompt shorter than the shared blocks is capped by its length
    assert intended_cached([[4, 5], [4, 5]], [700, 600]) == [0, 600]
    assert intended_cached([[4], [4]], [10, 20], block_tokens=16) == [0, 10]


def test_builder_reports_intended_cached_for_hash_ids_only():
    b = PromptBuilder(seed=1, block_tokens=8, overhead=1)
    p = b.build([0, 1, 2], [17, 17, 9], [[3, 4], [3, 4], [3]])
    # text lengths are 16, 16, 8 words (overhead 1 subtracted); blocks of 8
    assert p.intended_cached == [0, 16, 8]
    assert p.texts[1] == p.texts[0] and p.texts[0].startswith(p.texts[2])
    assert b.build([0, 1], [9, 9]).intended_cached is None


def test_cache_block_miss_rule_and_summary_round_trip(tmp_path):
    def row(intended, observed, prompt=1024):
        return {"prompt_tokens_intended_cached": intended, "prompt_tokens_cached": observed,
                "prompt_tokens_server": prompt, "input_tokens": prompt}  # fmt: skip

    rows = [row(0, 0), row(512, 514), row(512, 255), row(512, 256), row(1024, 300), row(512, None)]
    ok = pl.DataFrame(rows, schema={k: RECORD_SCHEMA[k] for k in rows[0]})
    cache = cache_truth(ok)
    assert cache is not None and cache.miss_fraction == CACHE_MISS_FRACTION == 0.5
    # meant to hit: 5; judged (server reported): 4; below half: 255 of 512 and 300 of 1024
    assert (cache.intended_requests, cache.missed_requests) == (5, 2)
    assert cache.missed_share == pytest.approx(2 / 4)
    assert cache.intended_hit_rate == pytest.approx(3072 / 6144)
    assert cache.observed_hit_rate == pytest.approx((514 + 255 + 256 + 300) / 5120)
    assert (
        cache_truth(
            ok.with_columns(
                pl.lit(None, pl.Int32).alias(c)
                for c in rows[0]
                if c.startswith("prompt_tokens_") and "cached" in c
            )
        )
        is None
    )

    # summary.json with the block reads back typed; one from before it still reads
    records = pl.DataFrame(
        {**{c: [None] for c in RECORD_SCHEMA}, "req_id": [0], "ok": [True], "dropped": [False],
         "late": [False], "intended_s": [0.0], "sent_s": [0.0], "first_token_s": [0.1],
         "end_s": [0.2], "lag_s": [0.0], "queue_s": [0.0], "input_tokens": [600],
         "prompt_tokens_cached": [512], "prompt_tokens_intended_cached": [512],
         "chunk_times_s": [[0.1]], "chunk_chars": [[1]], "chunk_tokens": [[1]], "attempts": [1]},
        schema=RECORD_SCHEMA,
    )  # fmt: skip
    s = summarize(records)
    assert s.cache is not None and s.cache.observed_hit_rate == pytest.approx(512 / 600)
    assert any(name.startswith("prefix cache") for name, _ in s.summary().sections)
    doc = s.to_dict()
    (tmp_path / "summary.json").write_text(json.dumps(doc))
    assert read_summary(tmp_path).cache == s.cache
    older = {k: v for k, v in doc.items() if k != "cache"}
    (tmp_path / "summary.json").write_text(json.dumps(older))
    assert read_summary(tmp_path).cache is None
    assert RunSummary.from_dict(older).to_dict() == older


def test_records_from_before_the_cache_columns_still_read(tmp_path):
    assert LATER_COLUMNS["prompt_tokens_cached"] is None
    assert LATER_COLUMNS["prompt_tokens_intended_cached"] is None
    old = pl.DataFrame(schema=RECORD_SCHEMA).drop("prompt_tokens_cached",
                                                  "prompt_tokens_intended_cached")  # fmt: skip
    (tmp_path / "records").mkdir()
    old.write_parquet(tmp_path / "records" / "part-00000.parquet")
    assert read_records(tmp_path).columns == list(RECORD_SCHEMA)


@pytest.mark.engine
@pytest.mark.slow
def test_mooncake_shared_blocks_are_served_from_llama_cpp_cache(engine, tmp_path):
    """12 real Mooncake requests (each starts with the shared block 0, the rest of its blocks
    its own), one at a time: each after the first is meant to reuse 512 prompt tokens, and
    llama.cpp reports at least those as cached (plus the BOS before them)."""

    from burstlab.replay.run import ReplayConfig, replay
    from burstlab.replay.schedule import ScheduleOptions
    from burstlab.traces import sample_frame

    n = 12
    trace = sample_frame("mooncake-conversation")
    ids = trace["hash_ids"].head(n).to_list()
    assert all(h[0] == 0 for h in ids)  # the premise: block 0 shared, nothing else
    assert len({b for h in ids for b in h[1:]}) == sum(len(h) - 1 for h in ids)
    cfg = ReplayConfig(
        client=ClientOptions(url=engine.base_url, max_concurrency=1),
        schedule=ScheduleOptions(limit=n, speedup=10, max_input_tokens=1024,
                                 max_output_tokens=4, sessions=False),
        model=engine.model, progress=False, report=False,
    )  # fmt: skip
    result = replay(trace, cfg, tmp_path / "run")
    rec = result.records
    assert rec["ok"].all(), rec["error"].drop_nulls().to_list()
    overhead = result.prompts.overhead  # BOS: the text (and its blocks) start after it
    lengths = (rec["input_tokens"] - overhead).to_list()
    assert min(lengths) > 512
    assert rec["prompt_tokens_intended_cached"].to_list() == [0] + [512] * (n - 1)
    observed = rec["prompt_tokens_cached"].to_list()
    assert all(c is not None for c in observed)
    assert all(c >= 512 for c in observed[1:]), observed  # block 0 (after the BOS) reused
    assert all(c < 512 + 16 for c in observed[1:]), observed  # and no more than that
    cache = result.metrics.cache
    assert cache is not None and cache.intended_requests == n - 1
    assert cache.missed_requests == 0 and cache.missed_share == 0.0
    total = int(rec["prompt_tokens_server"].sum())
    assert cache.intended_hit_rate == pytest.approx(512 * (n - 1) / total)
    assert cache.observed_hit_rate == pytest.approx(sum(observed) / total)
