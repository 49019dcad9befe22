"""Many client processes on one machine (replay/workers.py) and client saturation.

The sharding and saturation rules are checked on hand-made plans and records; the runs use
real HTTP over loopback against the instant server, with small schedules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from burstlab.cli import app
from burstlab.errors import UsageError
from burstlab.replay.client import ClientOptions, Plan
from burstlab.replay.goodput import SLO, goodput
from burstlab.replay.metrics import per_request, summarize
from burstlab.replay.records import RECORD_SCHEMA, read_records
from burstlab.replay.run import ReplayConfig, replay
from burstlab.replay.schedule import ScheduleOptions
from burstlab.replay.summary import CLIENT_LAG_BOUND_S, CLIENT_LAG_MIN_REQUESTS, read_summary
from burstlab.replay.workers import (
    _exit_text,
    aggregate,
    check_shared_clock,
    parse_workers,
    resolve_workers,
    shard_indices,
    shard_plan,
)


# -- planning: shards, auto, options --------------------------------------------------------
def plan_of(sessions: list[str | None], intended: list[float] | None = None) -> Plan:
    """A Plan whose later turns of a session follow the previous turn (as make_plan does)."""
    n = len(sessions)
    last: dict[str, int] = {}
    follows, turn = [], []
    for i, sid in enumerate(sessions):
        if sid is None:
            follows.append(-1)
            turn.append(None)
        else:
            follows.append(last.get(sid, -1))
            turn.append(sum(1 for s in sessions[:i] if s == sid))
            last[sid] = i
    return Plan(
        req_id=[100 + i for i in range(n)],
        intended_s=intended if intended is not None else [i * 0.01 for i in range(n)],
        bodies=[f"body {i}".encode() for i in range(n)],
        input_tokens=[10] * n,
        prompt_tokens_client=[None] * n,
        output_tokens_target=[4] * n,
        session_id=sessions,
        turn=turn,
        follows=follows,
        think_s=[None if f < 0 else 0.5 for f in follows],
    )


def test_sessionless_requests_are_dealt_round_robin_in_schedule_order():
    plan = plan_of([None] * 7)
    assert shard_indices(plan, 3) == [[0, 3, 6], [1, 4], [2, 5]]


def test_a_shard_keeps_every_per_request_column_of_the_plan():
    """shard_plan used to list the Plan's columns by hand, so a column added later (intended
    cached tokens) was lost in multi-worker runs; every field is now carried."""
    import dataclasses

    plan = dataclasses.replace(
        plan_of([None] * 5), oversized=[False, True, False, True, False],
        intended_cached=[0, 512, None, 1024, 0],
    )  # fmt: skip
    sub = shard_plan(plan, [1, 3])
    assert sub.req_id == [101, 103]
    assert sub.oversized == [True, True]
    assert sub.intended_cached == [512, 1024]
    assert shard_plan(plan_of([None] * 2), [0]).intended_cached is None  # None stays None


def test_a_session_stays_in_one_worker_in_order_with_follows_remapped():
    sessions = ["a", None, "b", "a", None, "b", "a", None, None, "c"]
    plan = plan_of(sessions)
    shards = shard_indices(plan, 2)
    assert sorted(i for s in shards for i in s) == list(range(10))  # each exactly once
    assert shard_indices(plan, 2) == shards  # deterministic
    # units in schedule order to the worker with the fewest requests (ties: lowest id):
    # session a (3 turns) → 0, request 1 → 1, b (2 turns) → 1, request 4 → 0 (3 each), ...
    assert shards == [[0, 3, 4, 6, 8], [1, 2, 5, 7, 9]]
    for positions in shards:
        sub = shard_plan(plan, positions)
        assert list(sub.req_id) == [100 + i for i in positions]
        assert list(sub.bodies) == [f"body {i}".encode() for i in positions]
        for j, f in enumerate(sub.follows):
            if f >= 0:  # the previous turn of the same session, earlier in the shard
                assert f < j and sub.session_id[f] == sub.session_id[j]
                assert sub.turn[f] == sub.turn[j] - 1  # type: ignore[operator]
            else:
                assert sub.turn[j] in (None, 0)


def test_auto_workers_follow_the_busiest_second_and_the_cores():
    busy = plan_of([None] * 4000, [i / 4000 for i in range(4000)])  # 4,000 req/s for 1 s
    assert resolve_workers("auto", busy, cores=8) == 3  # ceil(4000 / 1500)
    assert resolve_workers("auto", busy, cores=2) == 2
    calm = plan_of([None] * 100, [i / 100 for i in range(100)])  # 100 req/s
    assert resolve_workers("auto", calm, cores=8) == 1
    assert resolve_workers(5, calm) == 5
    assert resolve_workers(5, plan_of(["a", "a", None])) == 2  # no more workers than units


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_workers_must_be_a_count_or_auto(bad):
    with pytest.raises(UsageError) as exc:
        parse_workers(bad)
    assert exc.value.param == "workers"
    assert parse_workers(" AUTO ") == "auto" and parse_workers("3") == 3


def test_the_run_clock_is_one_clock_for_the_machine():
    # time.perf_counter is clock_gettime(CLOCK_MONOTONIC) on Linux: system-wide, so one t0
    # read in the parent means the same instant in every worker
    impl = check_shared_clock()
    if sys.platform.startswith("linux"):
        assert impl == "clock_gettime(CLOCK_MONOTONIC)"
        probe = "import time; print(repr(time.perf_counter()))"
        before = time.perf_counter()
        child = float(subprocess.check_output([sys.executable, "-c", probe], text=True))
        after = time.perf_counter()
        assert before < child < after  # a fresh process reads the same clock


def test_live_stats_are_summed_over_workers_and_exits_said_in_words():
    total = aggregate(
        [
            {"sent": 3, "done": 2, "errors": 1, "in_flight": 1, "max_lag_s": 0.002,
             "client_saturated": None},
            {"sent": 4, "done": 4, "errors": 0, "in_flight": 0, "max_lag_s": 0.009,
             "client_saturated": "event loop behind"},
        ]
    )  # fmt: skip
    assert (total.sent, total.done, total.errors, total.in_flight) == (7, 6, 1, 1)
    assert total.max_lag_s == 0.009
    assert getattr(total, "client_saturated", None) in (None, "event loop behind")
    assert _exit_text(-9, None, False) == "killed by signal 9 (SIGKILL)"
    assert _exit_text(0, None, True) == "interrupted"
    assert _exit_text(1, "OSError: boom", False) == "exited with status 1: OSError: boom"


# -- client saturation, from records ---------------------------------------------------------
def records(n: int, *, lag_s: float = 0.0005, client_errors: int = 0, queue_s: float = 0.0):
    """`n` successful records 10 ms apart sent `lag_s` late, the last `client_errors` of them
    failed inside the client."""
    rows = []
    for i in range(n):
        intended = i * 0.01
        sent = intended + lag_s
        failed = i >= n - client_errors
        rows.append(
            {
                "req_id": i, "intended_s": intended, "dispatch_s": intended, "sent_s": sent,
                "first_byte_s": sent + 0.01, "first_token_s": None if failed else sent + 0.01,
                "end_s": sent + 0.05, "chunk_times_s": [] if failed else [sent + 0.01],
                "chunk_chars": [] if failed else [4], "chunk_tokens": [] if failed else [1],
                "status": None if failed else 200, "ok": not failed,
                "error_kind": "client" if failed else None,
                "error": "ClientPayloadError: x" if failed else None, "dropped": False,
                "late": False, "lag_s": lag_s, "queue_s": queue_s, "input_tokens": 10,
                "output_tokens_target": 1, "output_tokens_client": 1,
                "output_tokens_server": None if failed else 1, "attempts": 1, "worker_id": 0,
            }
        )  # fmt: skip
    return pl.DataFrame(rows, schema=RECORD_SCHEMA)


def test_a_healthy_client_is_not_saturated():
    s = summarize(records(200))
    assert s.client_saturated is False
    sat = s.client_saturation
    assert sat is not None and sat.reasons == [] and sat.client_errors == 0
    assert sat.lag_p99_s == pytest.approx(0.0005) and sat.lag_measured == 200
    assert sat.delivered_ratio == pytest.approx(1.0)


def test_p99_lag_over_the_bound_saturates_but_only_over_enough_requests():
    late = CLIENT_LAG_BOUND_S * 2
    s = summarize(records(CLIENT_LAG_MIN_REQUESTS, lag_s=late))
    assert s.client_saturated is True
    assert s.client_saturation is not None
    assert "p99 schedule lag 20.0 ms > the 10 ms bound" in s.client_saturation.reasons[0]
    few = summarize(records(CLIENT_LAG_MIN_REQUESTS - 1, lag_s=late))
    assert few.client_saturated is False  # p99 of 99 requests is one preemption
    # the max-concurrency queue is the configured cap, not the client falling behind
    queued = summarize(records(200, lag_s=late, queue_s=late))
    assert queued.client_saturated is False


def test_client_errors_saturate_and_are_never_server_faults():
    recs = records(200, client_errors=5)
    s = summarize(recs, client_reasons=["client process 1: event loop behind"])
    assert s.client_saturated is True
    assert s.client_saturation is not None
    assert s.client_saturation.client_errors == 5
    assert s.client_saturation.reasons == [
        "client process 1: event loop behind",
        "5 requests failed inside the client",
    ]
    assert (s.counts.completed, s.counts.failed, s.counts.errors_by_kind) == (195, 0, {})
    good = goodput(per_request(recs), SLO(ttft=1.0), s.duration_s)
    assert (good.requests, good.good, good.attainment) == (195, 195, 1.0)
    assert s.summary().notes[0].startswith("the client saturated (")
    # summary.json round trip keeps both fields
    again = type(s).from_dict(json.loads(json.dumps(s.to_dict())))
    assert again.client_saturated is True and again.client_saturation == s.client_saturation


# -- real runs against the instant server ----------------------------------------------------
def session_frame(n_sessions: int = 8, turns: int = 4, singles: int = 88) -> pl.DataFrame:
    """Sessions of `turns` turns 0.05 s apart (think time) among sessionless requests at
    ~100 req/s: 120 requests over ~1 s by default."""
    rows = []
    for s in range(n_sessions):
        for t in range(turns):
            rows.append((s * 0.1 + t * 0.05, f"s{s}"))
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


def config(url: str) -> ReplayConfig:
    return ReplayConfig(
        client=ClientOptions(url=url),
        schedule=ScheduleOptions(sessions=True),
        probe_tokenize=False,
        report=False,
        progress=False,
        seed=7,
    )


COUNTED = ("scheduled", "recorded", "not_sent", "issued", "completed", "failed", "dropped")


def test_two_workers_send_every_request_once_and_merge_like_one(instant_server, tmp_path):
    server = instant_server()
    frame = session_frame()
    two = replay(frame, config(server.base_url), tmp_path / "two", workers=2)
    one = replay(frame, config(server.base_url), tmp_path / "one", workers=1)
    rec = two.records
    plan_ids = two.schedule.table["req_id"].to_list()
    assert sorted(rec["req_id"].to_list()) == sorted(plan_ids)  # every request exactly once
    assert rec["ok"].all()
    assert sorted(p.name[:5] for p in (two.run_dir / "records").iterdir()) == [
        "w000-",
        "w001-",
    ]
    assert set(rec["worker_id"].to_list()) == {0, 1}
    assert one.records["worker_id"].unique().to_list() == [0]
    # a session's turns: one worker, in order, each sent after the previous one ended
    sessions = rec.filter(pl.col("session_id").is_not_null()).sort("session_id", "turn")
    for (_,), group in sessions.group_by("session_id"):
        assert group["worker_id"].n_unique() == 1
        assert group["turn"].to_list() == list(range(group.height))
        ends, sends = group["end_s"].to_list(), group["sent_s"].to_list()
        assert all(sends[k] >= ends[k - 1] for k in range(1, group.height))
    # first turns and sessionless requests keep the planned intended time on the shared clock
    planned = dict(zip(plan_ids, two.schedule.table["intended_s"].to_list(), strict=True))
    fixed = rec.filter(pl.col("turn").fill_null(0) == 0)
    assert fixed["intended_s"].to_list() == [planned[i] for i in fixed["req_id"].to_list()]
    # merged counts = the sum over workers = a one-process run's counts
    merged = asdict(two.metrics.counts)
    parts = [summarize(rec.filter(pl.col("worker_id") == k)) for k in (0, 1)]
    for key in ("recorded", "issued", "completed", "failed", "dropped"):
        assert merged[key] == sum(asdict(p.counts)[key] for p in parts), key
    single = asdict(one.metrics.counts)
    assert {k: merged[k] for k in COUNTED} == {k: single[k] for k in COUNTED}
    workers = two.metrics.workers
    assert workers is not None
    assert [(w.id, w.exit) for w in workers] == [(0, "ok"), (1, "ok")]
    assert sum(w.requests for w in workers) == sum(w.planned for w in workers) == len(plan_ids)
    assert [(w.id, w.requests, w.exit) for w in one.metrics.workers or []] == [
        (0, len(plan_ids), "ok")
    ]
    run = json.loads((two.run_dir / "run.json").read_text())
    assert run["workers"]["used"] == 2 and run["workers"]["asked"] == 2
    assert read_summary(two.run_dir).workers == workers


def burst_trace(path: Path, n: int) -> Path:
    pl.DataFrame(
        {
            "source": ["fixture"] * n,
            "arrival_s": [0.0] * n,
            "input_tokens": [8] * n,
            "output_tokens": [2] * n,
            "failed": [False] * n,
        }
    ).write_parquet(path)
    return path


def test_an_overloaded_client_is_flagged_and_replay_exits_3(instant_server, tmp_path):
    # 1,000 requests due at the same instant: no Python client sends them all within the
    # 10 ms lag bound, so the p99 lag says the client, not the server, fell behind
    server = instant_server()
    out = tmp_path / "run"
    trace = burst_trace(tmp_path / "burst.parquet", 1000)
    result = CliRunner().invoke(
        app,
        ["replay", str(trace), "--url", server.base_url, "--out", str(out),
         "--no-probe-tokenize", "--workers", "1"],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    said = " ".join(result.output.split())
    assert "warning: the client saturated (" in said and "p99 schedule lag" in said
    summary = json.loads((out / "summary.json").read_text())
    assert summary["client_saturated"] is True
    block = summary["client_saturation"]
    assert block["lag_p99_s"] > block["lag_bound_s"] == CLIENT_LAG_BOUND_S
    assert block["lag_measured"] == 1000 and block["client_errors"] == 0
    assert summary["counts"]["completed"] == 1000  # the server served every one
    assert "class='banner'" in (out / "report.html").read_text()


def test_cli_rejects_a_bad_worker_count(tmp_path):
    trace = burst_trace(tmp_path / "t.parquet", 2)
    result = CliRunner().invoke(
        app, ["replay", str(trace), "--workers", "0", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "error: --workers:" in result.output


# -- a worker killed, Ctrl-C: through the CLI in its own process -----------------------------
def steady_trace(path: Path, n: int, rate: float) -> Path:
    pl.DataFrame(
        {
            "source": ["fixture"] * n,
            "arrival_s": [i / rate for i in range(n)],
            "input_tokens": [8] * n,
            "output_tokens": [2] * n,
            "failed": [False] * n,
        }
    ).write_parquet(path)
    return path


def start_replay(trace: Path, url: str, out: Path, workers: int) -> subprocess.Popen:
    argv = [
        sys.executable, "-c", "from burstlab.cli import main; main()",
        "replay", str(trace), "--url", url, "--out", str(out), "--no-probe-tokenize",
        "--workers", str(workers),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def worker_pids(parent: int) -> dict[int, int]:
    """worker id → pid of the replay worker processes whose parent is `parent` (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        names = [a.decode() for a in argv if a.startswith(b"worker=")]
        if ppid == parent and names:
            found[int(names[0].removeprefix("worker="))] = int(entry.name)
    return found


def wait_for(predicate, timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds workers in /proc")
def test_a_killed_worker_keeps_its_finished_requests_and_is_named(instant_server, tmp_path):
    server = instant_server()
    out = tmp_path / "run"
    n = 800  # 8 s at 100 req/s: worker 1 flushes a part every 2 s, then is killed
    proc = start_replay(steady_trace(tmp_path / "t.parquet", n, 100.0), server.base_url, out, 2)
    wait_for(lambda: len(worker_pids(proc.pid)) == 2, what="two workers")
    pids = worker_pids(proc.pid)
    wait_for(lambda: list((out / "records").glob("w001-part-*.parquet")), what="a part")
    os.kill(pids[1], signal.SIGKILL)
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 4, output
    assert "client process 1 killed by signal 9 (SIGKILL)" in " ".join(output.split())
    summary = json.loads((out / "summary.json").read_text())
    workers = {w["id"]: w for w in summary["workers"]}
    assert workers[0]["exit"] == "ok" and workers[0]["requests"] == workers[0]["planned"]
    assert workers[1]["exit"] == "killed by signal 9 (SIGKILL)"
    rec = read_records(out)
    kept = rec.filter(pl.col("worker_id") == 1).height
    assert workers[1]["requests"] == kept and 0 < kept < workers[1]["planned"]
    assert rec["req_id"].n_unique() == rec.height == summary["counts"]["recorded"]
    assert rec["ok"].all()
    assert summary["counts"]["not_sent"] == n - rec.height > 0


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds workers in /proc")
def test_ctrl_c_stops_every_worker_and_keeps_their_records(instant_server, tmp_path):
    server = instant_server(delay_s=0.2)  # every request is in flight for 0.2 s
    out = tmp_path / "run"
    proc = start_replay(steady_trace(tmp_path / "t.parquet", 3000, 100.0), server.base_url, out, 2)
    wait_for(lambda: len(list((out / "records").glob("w*-part-*.parquet"))) >= 2, what="parts")
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 130, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert [w["exit"] for w in summary["workers"]] == ["interrupted", "interrupted"]
    rec = read_records(out)
    assert set(rec.filter(~pl.col("ok"))["error_kind"].to_list()) <= {"cancelled"}
    assert rec["req_id"].n_unique() == rec.height == summary["counts"]["recorded"]
    assert {w["id"]: w["requests"] for w in summary["workers"]} == dict(
        rec.group_by("worker_id").len().iter_rows()
    )
    assert summary["counts"]["not_sent"] > 0


def test_records_of_a_run_recorded_before_worker_id_read_as_one_process(tmp_path):
    """A run written before the `worker_id` and `oversized` columns existed still reads: its
    records come from one process (worker 0) and did not know the server's context (null)."""

    old = pl.DataFrame({"req_id": [2, 1]}, schema={"req_id": pl.Int64()}).with_columns(
        pl.lit(None, dtype).alias(name)
        for name, dtype in RECORD_SCHEMA.items()
        if name not in ("req_id", "worker_id", "oversized")
    )
    (tmp_path / "records").mkdir()
    old.write_parquet(tmp_path / "records" / "part-00000.parquet")
    frame = read_records(tmp_path)
    assert frame.columns == list(RECORD_SCHEMA)
    assert frame["req_id"].to_list() == [1, 2]
    assert frame["worker_id"].to_list() == [0, 0]
    assert frame["oversized"].null_count() == 2
