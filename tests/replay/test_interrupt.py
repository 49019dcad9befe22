"""A crash or Ctrl-C keeps every finished request: records are on disk during the run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from burstlab.replay.records import read_records

pytestmark = pytest.mark.slow


def start_replay(source: Path, url: str, out: Path) -> subprocess.Popen:
    argv = [
        sys.executable, "-c", "from burstlab.cli import main; main()",
        "replay", str(source), "--url", url, "--out", str(out),
        "--no-probe-tokenize",
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def slow_trace(path: Path, n: int = 3000, rate: float = 100.0) -> Path:
    pl.DataFrame(
        {
            "source": ["fixture"] * n,
            "arrival_s": [i / rate for i in range(n)],
            "input_tokens": [16] * n,
            "output_tokens": [8] * n,
            "failed": [False] * n,
        }
    ).write_parquet(path)
    return path


def wait_for_parts(out: Path, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not list((out / "records").glob("part-*.parquet")):
        assert time.monotonic() < deadline, "no record part appeared"
        time.sleep(0.1)


def test_sigint_keeps_every_finished_request_and_writes_a_summary(instant_server, tmp_path):
    server = instant_server(delay_s=0.2)  # every request is in flight for 0.2 s
    out = tmp_path / "run"
    proc = start_replay(slow_trace(tmp_path / "trace.parquet"), server.base_url, out)
    wait_for_parts(out)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 130, output
    rec = read_records(out)
    served = server.metrics()["burstlab_instant_responses_complete_total"]
    # every response the server finished is a successful record, or was still being read when
    # Ctrl-C came (then it is recorded as 'cancelled'); nothing else fails
    ok = int(rec["ok"].sum())
    cancelled = rec.filter(pl.col("error_kind") == "cancelled").height
    assert set(rec.filter(~pl.col("ok"))["error_kind"].to_list()) == {"cancelled"}
    assert ok <= served <= ok + cancelled
    assert ok > 100
    assert rec["req_id"].n_unique() == rec.height
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert summary["counts"]["recorded"] == rec.height
    assert summary["counts"]["not_sent"] == 3000 - rec.height > 0


def test_sigkill_leaves_only_complete_parquet_parts(instant_server, tmp_path):
    server = instant_server()
    out = tmp_path / "run"
    proc = start_replay(slow_trace(tmp_path / "trace.parquet"), server.base_url, out)
    wait_for_parts(out)
    time.sleep(2.5)  # at least one more periodic flush
    proc.kill()
    proc.communicate(timeout=30)
    parts = sorted((out / "records").glob("part-*.parquet"))
    assert len(parts) >= 2
    rows = sum(pq.read_metadata(p).num_rows for p in parts)  # every part is a whole file
    rec = read_records(out)
    assert rec.height == rows > 100
    assert rec["ok"].all()
    assert rec["req_id"].to_list() == list(range(rec.height))  # a gap-free prefix of the trace
