"""Capacity search logic, and the CLI commands end to end against the instant server."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from burstlab.cli import app
from burstlab.replay.capacity import search_capacity
from burstlab.replay.ceiling import ceiling


def fake_probe(threshold: float, calls: list):
    """Attainment 1.0 up to `threshold` × load, then falling: a server with a known capacity."""

    def probe(scale, run_dir):
        calls.append(scale)
        run_dir.mkdir(parents=True)
        att = 1.0 if scale <= threshold else max(0.0, 1.0 - (scale - threshold))
        return {"offered_rps": 10.0 * scale, "attainment": att, "goodput_rps": 10.0 * scale * att}

    return probe


@pytest.mark.parametrize(("threshold", "start"), [(3.3, 1.0), (0.3, 1.0), (1.0, 1.0)])
def test_search_brackets_then_bisects_to_the_known_capacity(tmp_path, threshold, start):
    calls: list = []
    # passing means attainment ≥ 0.9, i.e. scale ≤ threshold + 0.1
    res = search_capacity(fake_probe(threshold, calls), tmp_path, target=0.9, first=start,
                          tolerance=0.02, max_probes=20)  # fmt: skip
    true_cap = threshold + 0.1
    assert res.best_speedup <= true_cap + 1e-9
    assert res.best_speedup >= true_cap / 1.02 - 1e-9
    assert res.best_offered_rps == pytest.approx(10.0 * res.best_speedup)
    assert res.probes.height == len(calls) and len(calls) <= 20
    saved = json.loads((tmp_path / "capacity.json").read_text())
    assert saved["best_speedup"] == res.best_speedup
    assert len(list(tmp_path.glob("probe-*"))) == len(calls)
    assert (tmp_path / "report.html").exists()


def test_search_reports_none_when_nothing_passes(tmp_path):
    def never(scale, run_dir):
        return {"offered_rps": scale, "attainment": 0.0, "goodput_rps": 0.0}

    res = search_capacity(never, tmp_path, max_probes=4)
    assert res.best_speedup is None and res.probes.height == 4


def test_ceiling_is_the_last_rate_before_the_first_failure():
    t = pl.DataFrame(
        {
            "offered_rps": [100.0, 200.0, 400.0, 800.0],
            "lag_p99_ms": [0.5, 1.0, 3.0, 1.0],
            "delivered_ratio": [1.0, 1.0, 1.0, 1.0],
        }
    )
    assert ceiling(t, 0.002, 0.99) == 200.0
    assert ceiling(t.with_columns(lag_p99_ms=pl.lit(5.0)), 0.002, 0.99) is None


@pytest.fixture
def trace(tmp_path):
    path = tmp_path / "trace.parquet"
    n = 30
    pl.DataFrame(
        {
            "source": ["fixture"] * n,
            "arrival_s": [i * 0.01 for i in range(n)],
            "input_tokens": [10] * n,
            "output_tokens": [5] * n,
            "failed": [False] * n,
        }
    ).write_parquet(path)
    return path


def test_cli_replay_writes_the_run_directory(instant_server, trace, tmp_path):
    server = instant_server()
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["replay", str(trace), "--url", server.base_url, "--out", str(out), "--vllm-keys",
         "--slo", "ttft=1,e2e=2", "--limit", "20"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["completed"] == 20
    assert summary["goodput"]["attainment"] == 1.0
    assert summary["vllm_bench_serve"]["completed"] == 20
    run = json.loads((out / "run.json").read_text())
    assert run["schedule"]["limit"] == 20 and run["target"]["endpoint"] == "completions"
    assert isinstance(run["seed"], int)  # drawn fresh for the run, recorded to reproduce it
    assert run["t0_utc"] >= run["started_utc"]  # run clock 0 on the wall clock
    assert (out / "report.html").exists()
    assert "replay: 20 of 20 requests completed" in result.output
    again = ["replay", str(trace), "--url", server.base_url, "--out", str(out), "--limit", "5"]
    refused = CliRunner().invoke(app, again)
    assert refused.exit_code == 2 and "--out:" in refused.output
    assert "already exists" in refused.output and "Traceback" not in refused.output
    assert CliRunner().invoke(app, [*again, "--overwrite"]).exit_code == 0
    assert json.loads((out / "summary.json").read_text())["counts"]["completed"] == 5


def test_cli_bad_options_are_one_line_errors(trace, tmp_path):
    runner = CliRunner()
    r = runner.invoke(
        app, ["replay", str(trace), "--slo", "ttft=fast", "--out", str(tmp_path / "x")]
    )
    assert r.exit_code == 2 and "error: --slo:" in r.output and "ttft=fast" in r.output
    r = runner.invoke(app, ["replay", str(tmp_path / "missing.parquet")])
    assert r.exit_code == 1 and "missing.parquet" in r.output and "Traceback" not in r.output


def test_cli_capacity_keeps_every_probe(instant_server, trace, tmp_path):
    server = instant_server()
    out = tmp_path / "cap"
    result = CliRunner().invoke(
        app,
        ["capacity", str(trace), "--url", server.base_url, "--slo", "ttft=1", "--out", str(out),
         "--max-probes", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cap = json.loads((out / "capacity.json").read_text())
    assert [p["speedup"] for p in cap["probes"]] == [1.0, 2.0]  # both pass: doubling
    assert cap["best_speedup"] == 2.0
    for p in cap["probes"]:
        assert (
            json.loads((tmp_path / p["run_dir"] / "summary.json").read_text())["counts"][
                "completed"
            ]
            == 30
        )


@pytest.mark.slow
def test_cli_calibrate(tmp_path):
    result = CliRunner().invoke(
        app,
        ["calibrate", "--rates", "100,200", "--duration", "0.5",
         "--lag-bound", "1.0", "--out", str(tmp_path / "cal")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cal = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert [r["offered_rps"] for r in cal["rates"]] == [100.0, 200.0]
    assert all(r["completed"] == r["requests"] for r in cal["rates"])
    assert all(0.8 < r["delivered_ratio"] < 1.2 for r in cal["rates"])
    # the ceiling is what `ceiling` makes of the table (on a busy CI box a 0.5 s step may
    # miss the 0.99 delivery bound, so the value itself is not asserted here)
    table = pl.DataFrame(cal["rates"])
    assert cal["ceiling_rps"] == ceiling(table, 1.0, 0.99)


def test_api_key_comes_from_the_environment_and_is_never_written(
    instant_server, trace, tmp_path, monkeypatch
):
    server = instant_server()
    secret = "sk-burstlab-test-3f9a1c"
    monkeypatch.setenv("BURSTLAB_TEST_KEY", secret)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["replay", str(trace), "--url", server.base_url, "--out", str(out), "--limit", "3",
         "--api-key-env", "BURSTLAB_TEST_KEY"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    for path in [out / "run.json", out / "summary.json", *(out / "records").glob("*.parquet")]:
        assert secret.encode() not in path.read_bytes()
    assert json.loads((out / "run.json").read_text())["target"]["api_key"] == "<from env>"
    missing = CliRunner().invoke(
        app, ["replay", str(trace), "--url", server.base_url, "--api-key-env", "NOT_SET_XYZ"]
    )
    assert (
        missing.exit_code == 2
        and "--api-key-env: environment variable NOT_SET_XYZ" in missing.output
    )
