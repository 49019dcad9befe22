"""Faults are data: each injected fault becomes the right per-request error, the run goes on,
and counts reconcile with the instant server's own /metrics counters."""

from __future__ import annotations

import polars as pl
import pytest

from burstlab.engines.llamacpp import free_port
from burstlab.replay.client import MAX_ATTEMPTS, ClientOptions
from burstlab.replay.run import ReplayConfig, replay
from burstlab.replay.schedule import ScheduleOptions


def requests_frame(n: int, rate: float = 200.0, output_tokens: int = 8) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source": ["fixture"] * n,
            "arrival_s": [i / rate for i in range(n)],
            "input_tokens": [20] * n,
            "output_tokens": [output_tokens] * n,
            "failed": [False] * n,
        }
    )


def config(url: str, **client) -> ReplayConfig:
    return ReplayConfig(
        client=ClientOptions(url=url, **client),
        schedule=ScheduleOptions(sessions=False),
        report=False,
        progress=False,
    )


def counters(server) -> dict[str, float]:
    m = server.metrics()
    return {
        "completion_tokens": m["burstlab_instant_completion_tokens_total"],
        "completions": m['burstlab_instant_requests_total{endpoint="completions"}'],
        **{
            k.split('"')[1]: v
            for k, v in m.items()
            if k.startswith("burstlab_instant_faults_total")
        },
    }


@pytest.mark.parametrize(
    ("fault", "kind", "status"),
    [
        ("http500", "http", 500),
        ("http429", "http", 429),
        ("cut", "cut", 200),
        ("malformed", "malformed", 200),
        ("refuse", "reset", None),
        ("hang", "timeout", None),
    ],
)
def test_each_fault_is_a_per_request_error(instant_server, tmp_path, fault, kind, status):
    server = instant_server(faults={fault: 1.0})
    cfg = config(server.base_url, read_timeout_s=0.5, timeout_s=2.0)
    result = replay(requests_frame(6), cfg, tmp_path / "run")
    rec = result.records
    assert rec.height == 6
    assert rec["error_kind"].to_list() == [kind] * 6
    assert rec["status"].to_list() == [status] * 6
    assert rec["ok"].sum() == 0
    c = result.metrics["counts"]
    assert (c["completed"], c["failed"], c["errors_by_kind"]) == (0, 6, {kind: 6})
    assert rec["error"].null_count() == 0
    # a connection that dies before any response byte is re-sent, up to MAX_ATTEMPTS sends
    assert rec["attempts"].to_list() == [MAX_ATTEMPTS if fault == "refuse" else 1] * 6


@pytest.mark.parametrize("fault", ["no-done", "no-usage", "keepalive-comments", "empty-deltas"])
def test_benign_stream_quirks_still_succeed(instant_server, tmp_path, fault):
    server = instant_server(faults={fault: 1.0})
    result = replay(requests_frame(5), config(server.base_url), tmp_path / "run")
    rec = result.records
    assert rec["ok"].all(), rec["error"].to_list()
    assert rec["output_tokens_client"].to_list() == [8] * 5
    server_counts = rec["output_tokens_server"].to_list()
    assert server_counts == ([None] * 5 if fault == "no-usage" else [8] * 5)
    if fault == "keepalive-comments":
        assert (rec["sse_comments"] >= 8).all()
    assert result.metrics["tokens"]["server_usage_missing"] == (5 if fault == "no-usage" else 0)


def test_mixed_faults_reconcile_with_server_counters(instant_server, tmp_path):
    mix = {"cut": 0.15, "http500": 0.1, "malformed": 0.1, "no-done": 0.1, "keepalive-comments": 0.1}
    server = instant_server(faults=mix, seed=7)
    cfg = config(server.base_url)
    cfg.probe_tokenize = False  # no probe request: the server sees exactly the 300
    result = replay(requests_frame(300, rate=500), cfg, tmp_path / "run")
    rec = result.records
    c = result.metrics["counts"]
    assert rec.height == 300 == c["scheduled"] == c["issued"]
    assert c["completed"] + c["failed"] == 300
    assert sum(c["errors_by_kind"].values()) == c["failed"]
    m = counters(server)
    assert m["completions"] == 300
    assert c["errors_by_kind"].get("cut", 0) == m["cut"] > 0
    assert c["errors_by_kind"].get("http", 0) == m["http500"] > 0
    assert c["errors_by_kind"].get("malformed", 0) == m["malformed"] > 0
    assert int(rec["sse_comments"].gt(0).sum()) == m["keepalive-comments"] > 0
    assert c["completed"] == 300 - m["cut"] - m["http500"] - m["malformed"]
    ok = rec.filter("ok")
    # every successful request got exactly its 8 tokens, by the server's count and ours
    assert ok["output_tokens_client"].eq(8).all()
    assert ok["output_tokens_server"].eq(8).all()
    # tokens the server generated for requests that completed = what we recorded
    assert result.metrics["total_output_tokens"] == 8 * c["completed"]


def test_connection_refused_is_recorded_and_the_run_finishes(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = replay(requests_frame(4), config(url), tmp_path / "run")
    assert result.records["error_kind"].to_list() == ["refused"] * 4
    assert result.metrics["counts"]["failed"] == 4


def test_a_reset_before_any_response_is_resent(instant_server, tmp_path):
    server = instant_server(faults={"refuse": 0.5}, seed=3)
    cfg = config(server.base_url)
    cfg.probe_tokenize = False
    result = replay(requests_frame(200, rate=400), cfg, tmp_path / "run")
    rec = result.records
    refused = server.metrics()['burstlab_instant_faults_total{fault="refuse"}']
    # every refusal cost one send: a send that failed before any response byte was repeated,
    # up to MAX_ATTEMPTS sends, and only the last one's failure is recorded
    resends = int(rec["attempts"].sum()) - 200
    assert resends + int((rec["error_kind"] == "reset").sum()) == refused
    assert set(rec["attempts"].unique().to_list()) <= set(range(1, MAX_ATTEMPTS + 1))
    reset = rec.filter(pl.col("error_kind") == "reset")
    assert reset.height > 0 and (reset["attempts"] == MAX_ATTEMPTS).all()
    assert result.metrics["counts"]["resent"] == int((rec["attempts"] > 1).sum()) > 50
    assert rec.filter(pl.col("attempts") < MAX_ATTEMPTS)["ok"].all()


def _plan(n: int, at_s: float = 0.0):
    from burstlab.replay.client import Plan
    from burstlab.replay.prompts import request_body

    body = request_body("completions", None, " a b c", 4)
    return Plan(
        req_id=list(range(n)), intended_s=[at_s] * n, bodies=[body] * n, input_tokens=[3] * n,
        prompt_tokens_client=[3] * n, output_tokens_target=[4] * n, session_id=[None] * n,
        turn=[None] * n, follows=[-1] * n, think_s=[None] * n,
    )  # fmt: skip


def _run(plan, url: str, tmp_path):
    from burstlab.replay.client import ReplayClient, run_async
    from burstlab.replay.records import RecordWriter, read_records

    client = ReplayClient(plan, ClientOptions(url=url), RecordWriter(tmp_path / "records"))
    run_async(client.run())
    return client.stats, read_records(tmp_path)


def test_running_out_of_file_descriptors_is_the_clients_error_not_a_refusal(
    instant_server, tmp_path, monkeypatch
):
    import errno

    import aiohttp

    from burstlab.replay import client as client_mod

    server = instant_server()

    async def no_fd(self, req, traces, timeout):
        raise aiohttp.ClientConnectorError(
            req.connection_key, OSError(errno.EMFILE, "Too many open files")
        )

    monkeypatch.setattr(client_mod._CountingConnector, "_create_connection", no_fd)
    stats, rec = _run(_plan(5), server.base_url, tmp_path)
    assert rec["error_kind"].to_list() == ["client"] * 5
    assert rec["attempts"].to_list() == [1] * 5  # not re-sent as a stale keep-alive
    assert stats.client_errors == 5 and stats.errors == 5
    assert stats.client_saturated == "open-file limit reached"


def test_a_pool_bounded_by_the_open_file_limit_queues_and_says_so(
    instant_server, tmp_path, monkeypatch
):
    from burstlab.replay import client as client_mod

    server = instant_server(delay_s=0.1)
    monkeypatch.setattr(client_mod, "socket_budget", lambda wanted: 2)
    stats, rec = _run(_plan(6), server.base_url, tmp_path)
    assert rec["ok"].all()
    assert stats.peak_in_flight == 2
    assert stats.client_saturated == "open-file limit reached" and stats.client_errors == 0
    waited = rec.filter(pl.col("queue_s") > 0.05)
    assert waited.height == 4  # the wait is on the record (queue_s and lag_s), not hidden
    assert (waited["lag_s"] >= waited["queue_s"]).all()
