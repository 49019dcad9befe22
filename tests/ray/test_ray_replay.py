"""`replay` from Ray actors on a local two-node Ray cluster, against the instant server.

Small and slow: ~300 requests at ~100 req/s (sessions among sessionless requests) over
loopback, so the numbers check the plumbing — every request once, sessions whole and in order,
records from both nodes, clock offsets and per-node lag recorded, a killed actor named — not
throughput."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from burstlab.cli import app
from burstlab.errors import ReplayError
from burstlab.replay.client import ClientOptions, Plan
from burstlab.replay.metrics import summarize
from burstlab.replay.ray_workers import run_ray_workers
from burstlab.replay.records import read_records
from burstlab.replay.run import ReplayConfig, replay
from burstlab.replay.schedule import ScheduleOptions
from burstlab.replay.summary import read_summary

pytestmark = pytest.mark.ray


def session_frame(n_sessions: int = 20, turns: int = 5, singles: int = 200) -> pl.DataFrame:
    """Sessions of `turns` turns (0.1 s think time apart) among sessionless requests at
    100 req/s: 300 requests over ~2.5 s by default."""
    rows = []
    for s in range(n_sessions):
        for t in range(turns):
            rows.append((s * 0.1 + t * 0.1, f"s{s}"))
    rows += [(i / 100, None) for i in range(singles)]
    arrival, session = zip(*sorted(rows, key=lambda r: r[0]), strict=True)
    n = len(arrival)
    return pl.DataFrame(
        {
            "source": ["fixture"] * n,
            "arrival_s": list(arrival),
            "input_tokens": [16] * n,
            "output_tokens": [4] * n,
            "failed": [False] * n,
            "session_id": list(session),
        }
    )


def config(url: str, address: str) -> ReplayConfig:
    return ReplayConfig(
        client=ClientOptions(url=url),
        schedule=ScheduleOptions(sessions=True),
        probe_tokenize=False,
        report=False,
        progress=False,
        seed=7,
        ray=address,
    )


def test_two_ray_workers_on_two_nodes_send_every_request_once(
    ray_cluster, instant_server, tmp_path
):
    server = instant_server()
    result = replay(
        session_frame(), config(server.base_url, ray_cluster.address), tmp_path / "run", workers=2
    )
    rec = result.records
    plan_ids = result.schedule.table["req_id"].to_list()
    assert len(plan_ids) == 300
    assert sorted(rec["req_id"].to_list()) == sorted(plan_ids)  # every request exactly once
    assert rec["ok"].all()
    names = sorted(p.name for p in (result.run_dir / "records").iterdir())
    assert {n[:5] for n in names} == {"w000-", "w001-"}
    assert not [n for n in names if n.startswith(".")]  # no staged leftovers
    assert set(rec["worker_id"].to_list()) == {0, 1}

    # a session's turns: one worker, in order, each sent after the previous one ended
    sessions = rec.filter(pl.col("session_id").is_not_null()).sort("session_id", "turn")
    assert sessions["session_id"].n_unique() == 20
    for (_,), group in sessions.group_by("session_id"):
        assert group["worker_id"].n_unique() == 1
        assert group["turn"].to_list() == list(range(group.height))
        ends, sends = group["end_s"].to_list(), group["sent_s"].to_list()
        assert all(sends[k] >= ends[k - 1] for k in range(1, group.height))

    # merged counts = the sum over workers
    merged = asdict(result.metrics.counts)
    parts = [summarize(rec.filter(pl.col("worker_id") == k)) for k in (0, 1)]
    for key in ("recorded", "issued", "completed", "failed", "dropped"):
        assert merged[key] == sum(asdict(p.counts)[key] for p in parts), key
    workers = result.metrics.workers
    assert workers is not None
    assert [(w.id, w.exit) for w in workers] == [(0, "ok"), (1, "ok")]
    assert sum(w.requests for w in workers) == sum(w.planned for w in workers) == 300
    assert read_summary(result.run_dir).workers == workers

    # run.json: where each worker ran, its clock offset and round trip, lag per node
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["workers"]["used"] == 2
    info = run["workers"]["ray"]
    assert info["nodes"] == 2 and info["placement"] == "STRICT_SPREAD"
    nodes = {w["node_id"] for w in info["workers"]}
    assert len(nodes) == 2  # the workers landed on both nodes
    for w in info["workers"]:
        assert abs(w["offset_s"]) < 0.05  # one machine: one wall clock, up to the round trip
        assert 0 < w["rtt_s"] < 1.0
        assert w["armed_s"] > 0  # told to start before the start instant
    lag = info["lag_by_node"]
    assert set(lag) == nodes
    assert sum(v["n"] for v in lag.values()) == 300
    for v in lag.values():
        assert {"mean", "p50", "p99", "max"} <= set(v)
        assert 0 <= v["p50"] <= v["max"] < 1.0  # on schedule (loopback, 100 req/s)
    assert "t0_utc" in run


def test_replay_cli_sends_through_ray(ray_cluster, instant_server, tmp_path):
    server = instant_server()
    path = tmp_path / "load.parquet"
    session_frame(n_sessions=4, turns=3, singles=48).write_parquet(path)
    out = tmp_path / "cli"
    res = CliRunner().invoke(
        app,
        ["replay", str(path), "--url", server.base_url, "--ray", ray_cluster.address,
         "--workers", "2", "--out", str(out), "--no-probe-tokenize", "--seed", "1"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    run = json.loads((out / "run.json").read_text())
    assert len({w["node_id"] for w in run["workers"]["ray"]["workers"]}) == 2
    summary = read_summary(out)
    assert summary.counts.completed == 60
    assert [w.exit for w in summary.workers or []] == ["ok", "ok"]


def test_more_workers_than_the_cluster_has_cpus_is_refused_before_sending(ray_cluster, tmp_path):
    n = 3
    plan = Plan(
        req_id=list(range(n)), intended_s=[0.0] * n, bodies=[b"{}"] * n, input_tokens=[1] * n,
        prompt_tokens_client=[None] * n, output_tokens_target=[1] * n, session_id=[None] * n,
        turn=[None] * n, follows=[-1] * n, think_s=[None] * n,
    )  # fmt: skip
    with pytest.raises(ReplayError, match=r"has 2 CPUs on 2 nodes; 3 workers need one each"):
        run_ray_workers(
            plan, ClientOptions(url="http://127.0.0.1:9"), tmp_path / "records", n,
            ray_cluster.address,
        )  # fmt: skip
    assert not list((tmp_path / "records").iterdir())


def actor_pids() -> list[int]:
    """PIDs of this machine's processes running a ReplayActor (Ray titles them
    ``ray::ReplayActor…``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ray::ReplayActor" in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds actors in /proc")
def test_a_killed_actor_is_named_lost_and_the_other_keeps_its_records(
    ray_cluster, instant_server, tmp_path
):
    server = instant_server()
    frame = session_frame(n_sessions=0, turns=0, singles=400)  # 4 s at 100 req/s
    out = tmp_path / "run"
    box: dict[str, object] = {}

    def send() -> None:
        try:
            box["result"] = replay(frame, config(server.base_url, ray_cluster.address), out,
                                   workers=2)  # fmt: skip
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    deadline = time.monotonic() + 60
    while len(actor_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = actor_pids()
    assert len(pids) == 2, pids
    time.sleep(3.0)  # the 2 s lead, then ~1 s of sending
    os.kill(pids[1], signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive() and "error" not in box, box.get("error")
    summary = read_summary(out)
    workers = {w.id: w for w in summary.workers or []}
    lost = [w for w in workers.values() if w.exit.startswith("lost on Ray node ")]
    kept = [w for w in workers.values() if w.exit == "ok"]
    assert len(lost) == 1 and len(kept) == 1, workers
    assert lost[0].requests == 0  # its records travel at the end: all lost
    assert kept[0].requests == kept[0].planned == 200
    rec = read_records(out)
    assert set(rec["worker_id"].to_list()) == {kept[0].id}
    assert summary.counts.not_sent == 200
