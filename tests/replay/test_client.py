"""The client against the instant server: token accounting per chunk, chat framing, the
concurrency cap's queueing, the behind-schedule policies, and conversation turns."""

from __future__ import annotations

import asyncio
import time

import polars as pl
import pytest

from burstlab.replay.client import ClientOptions, Plan, ReplayClient, run_async
from burstlab.replay.metrics import per_request, summarize
from burstlab.replay.prompts import request_body
from burstlab.replay.records import RecordWriter, read_records
from burstlab.replay.run import ReplayConfig, replay
from burstlab.replay.schedule import ScheduleOptions


def frame(arrivals, output_tokens=8, **cols) -> pl.DataFrame:
    n = len(arrivals)
    return pl.DataFrame(
        {
            "source": ["fixture"] * n,
            "arrival_s": arrivals,
            "input_tokens": [12] * n,
            "output_tokens": [output_tokens] * n,
            "failed": [False] * n,
            **cols,
        }
    )


def cfg(url, *, schedule=None, **client) -> ReplayConfig:
    return ReplayConfig(
        client=ClientOptions(url=url, **client),
        schedule=schedule or ScheduleOptions(),
        report=False,
        progress=False,
    )


def test_multi_token_chunks_spread_itl_and_keep_both_counts(instant_server, tmp_path):
    server = instant_server(chunk_tokens=4, itl_s=0.002)
    result = replay(
        frame([0.0, 0.01, 0.02], output_tokens=16), cfg(server.base_url), tmp_path / "r"
    )
    rec = result.records
    assert rec["output_tokens_server"].to_list() == [16] * 3
    assert rec["output_tokens_client"].to_list() == [4] * 3  # chunks seen
    assert rec["chunk_tokens"].to_list() == [[4, 4, 4, 4]] * 3
    s = result.metrics
    assert s["tokens"]["output_mismatch_rate"] == 1.0
    assert s["full"]["itl_s"]["count"] == 3 * 15  # 16 tokens → 15 gaps per request
    assert s["full"]["icl_s"]["count"] == 3 * 3
    # ITL is the chunk gap spread over 4 tokens (zeros for the first chunk's 3 extra tokens)
    assert s["full"]["icl_s"]["p50"] >= 0.002
    assert s["full"]["itl_s"]["max"] == pytest.approx(s["full"]["icl_s"]["max"] / 4)


def test_chat_role_only_first_chunk_is_not_the_first_token(instant_server, tmp_path):
    server = instant_server(delay_s=0.05)
    result = replay(frame([0.0, 0.05]), cfg(server.base_url, endpoint="chat"), tmp_path / "r")
    pr = per_request(result.records)
    assert pr["ok"].all()
    assert pr["output_tokens_client"].to_list() == [8, 8]
    assert (pr["ttft_s"] >= 0.05).all()  # the role chunk comes at once, text after the delay
    assert pr["first_byte_s"].to_list() < pr["first_token_s"].to_list()


def test_max_concurrency_queueing_shows_in_schedule_anchored_metrics(instant_server, tmp_path):
    server = instant_server(delay_s=0.1)
    result = replay(
        frame([0.0] * 6), cfg(server.base_url, max_concurrency=2), tmp_path / "r"
    )  # six at once, two slots, 0.1 s each → three waves
    pr = per_request(result.records).sort("sent_s")
    assert pr["ok"].all()
    assert result.metrics["peak_in_flight"] == 2
    waves = pr["queue_s"].to_list()
    assert waves[:2] == pytest.approx([0, 0], abs=0.01)
    assert waves[2:4] == pytest.approx([0.1, 0.1], abs=0.04)
    assert waves[4:] == pytest.approx([0.2, 0.2], abs=0.06)
    # the service-anchored TTFT ignores the queue; the schedule-anchored one includes it
    assert (pr["ttft_s"] < 0.2).all()
    assert pr["ttft_sched_s"].max() > 0.28
    assert result.metrics["full"]["ttft_sched_s"]["max"] > result.metrics["full"]["ttft_s"]["max"]


def plan_for(url, n, spacing_s):
    body = request_body("completions", None, " a b c", 4)
    return Plan(
        req_id=list(range(n)), intended_s=[0.05 + i * spacing_s for i in range(n)],
        bodies=[body] * n, input_tokens=[3] * n, prompt_tokens_client=[3] * n,
        output_tokens_target=[4] * n, session_id=[None] * n, turn=[None] * n,
        follows=[-1] * n, think_s=[None] * n,
    )  # fmt: skip


@pytest.mark.parametrize("policy", ["send-late", "drop"])
def test_behind_schedule_policy(instant_server, tmp_path, policy):
    """A 0.3 s stall of the event loop: send-late sends the overdue requests late (flagged),
    drop records them as dropped; either way every request has a record."""
    server = instant_server()
    n = 40
    writer = RecordWriter(tmp_path / "records")
    stalled = []

    def stall(stats):
        if not stalled and stats.sent >= 5:
            stalled.append(True)
            time.sleep(0.3)  # blocks the loop on purpose

    client = ReplayClient(
        plan_for(server.base_url, n, 0.02),
        ClientOptions(url=server.base_url, policy=policy, late_after_s=0.005),
        writer, on_tick=stall, tick_s=0.05,
    )  # fmt: skip
    run_async(client.run())
    rec = read_records(tmp_path)
    assert rec.height == n
    behind = rec.filter(pl.col("late") | pl.col("dropped"))
    assert behind.height >= 5  # ~0.3 s / 0.02 s of requests fell due during the stall
    if policy == "drop":
        dropped = rec.filter("dropped")
        assert dropped.height >= 5
        assert dropped["sent_s"].null_count() == dropped.height
        assert set(dropped["error_kind"].to_list()) == {"dropped"}
        assert rec.filter(~pl.col("dropped"))["ok"].all()
        assert summarize(rec)["counts"]["dropped"] == dropped.height
    else:
        assert rec["ok"].all() and rec["dropped"].sum() == 0
        assert behind["lag_s"].max() > 0.2


def test_session_turns_wait_for_the_previous_response(instant_server, tmp_path):
    server = instant_server(delay_s=0.1)
    trace = frame(
        [0.0, 0.0, 1.0, 2.0],
        session_id=["a", "b", "a", "a"],
        source_latency_s=[0.5, 0.5, 0.5, None],
    )
    # think time = (1.0 - 0.0 - 0.5) × 0.2 = 0.1 s; the next turn = previous end + 0.1 s
    result = replay(
        trace, cfg(server.base_url, schedule=ScheduleOptions(speedup=5)), tmp_path / "r"
    )
    rec = result.records.sort("req_id")
    assert rec["ok"].all()
    a = rec.filter(pl.col("session_id") == "a").sort("turn")
    ends, intended = a["end_s"].to_list(), a["intended_s"].to_list()
    assert intended[1] == pytest.approx(ends[0] + 0.1)
    assert intended[2] == pytest.approx(ends[1] + 0.1)
    assert (a["sent_s"] >= a["intended_s"]).all()
    assert a["turn"].to_list() == [0, 1, 2]


def test_run_async_leaves_gc_and_switch_interval_as_they_were():
    import gc
    import sys

    before = (gc.isenabled(), sys.getswitchinterval())

    async def nothing():
        await asyncio.sleep(0)
        return gc.isenabled()

    assert run_async(nothing()) is False  # the collector is off during a run
    assert (gc.isenabled(), sys.getswitchinterval()) == before


def test_keep_alive_connections_are_reused(instant_server, tmp_path):
    """Spaced requests to a fast server ride one connection: the client reads each stream to
    its chunked terminator so the connection goes back to the pool."""
    server = instant_server()
    result = replay(frame([i * 0.02 for i in range(50)]), cfg(server.base_url), tmp_path / "r")
    assert result.metrics["counts"]["completed"] == 50
    assert 1 <= result.metrics["client"]["connections_opened"] <= 3
