"""Ordinary bad input to replay, engine and card is one line naming what is wrong — a
BurstlabError, exit 1 (2 for a bad option) — never a traceback, and leaves no output folder:
a SOURCE that is a spec JSON, a folder, a CSV, an empty or truncated Parquet file; a URL that is
not HTTP; a port in use or out of range; a run folder without summary.json; options and table
values a schedule cannot be made from."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from burstlab.cli import app
from burstlab.errors import InputError, ReplayError, UsageError
from burstlab.replay import read_records, read_summary
from burstlab.replay.client import ClientOptions
from burstlab.replay.run import ReplayConfig, replay
from burstlab.replay.schedule import ScheduleOptions, build_schedule, check_prompt_lengths


def requests(n: int = 3, **cols) -> pl.DataFrame:
    data = {
        "source": ["fixture"] * n,
        "arrival_s": [i * 0.01 for i in range(n)],
        "input_tokens": [10] * n,
        "output_tokens": [4] * n,
        "failed": [False] * n,
    }
    data.update(cols)
    return pl.DataFrame(data)


def cli(tmp_path: Path, *args: str):
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), *args])
    lines = result.output.strip().splitlines()
    return result.exit_code, lines


def one_error_line(lines: list[str]) -> str:
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in lines[0] and "internal error" not in lines[0]
    return lines[0]


@pytest.fixture
def sources(tmp_path) -> dict[str, Path]:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"burstlab_spec": 1, "arrivals": {}}))
    folder = tmp_path / "folder"
    folder.mkdir()
    empty = tmp_path / "empty.parquet"
    requests(0).write_parquet(empty)
    good = tmp_path / "good.parquet"
    requests(50).write_parquet(good)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    csv = tmp_path / "trace.csv"
    csv.write_text("arrival_s,input_tokens\n0,1\n")
    return {"spec": spec, "folder": folder, "empty": empty, "truncated": truncated, "csv": csv}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("spec", "spec.json: is a workload spec, not a requests table; generate requests from it"),
        ("folder", "folder: is a folder, not a requests table; expected a requests Parquet file"),
        ("empty", "the schedule is empty"),
        ("truncated", "truncated.parquet: cannot be read as a Parquet requests table ("),
        ("csv", "trace.csv: a CSV file, not a canonical requests table; ingest a raw trace first"),
    ],
)
def test_replay_source_that_is_not_a_requests_table(tmp_path, sources, kind, expected):
    out = tmp_path / "run"
    code, lines = cli(tmp_path, "replay", str(sources[kind]), "--url", "http://127.0.0.1:9",
                      "--out", str(out))  # fmt: skip
    assert code == 1
    assert expected in one_error_line(lines)
    assert not out.exists()


def test_library_replay_of_a_truncated_parquet_is_an_input_error(tmp_path, sources):
    config = ReplayConfig(client=ClientOptions(url="http://127.0.0.1:9"), progress=False)
    with pytest.raises(InputError, match="cannot be read as a requests table: parquet"):
        replay(pl.scan_parquet(sources["truncated"]), config, tmp_path / "run")
    with pytest.raises(ReplayError, match="the schedule is empty"):
        replay(pl.scan_parquet(sources["empty"]), config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://127.0.0.1:21", "--url: expected an http:// or https:// base URL, found 'ftp://"),
        ("127.0.0.1:8080", "--url: expected an http:// or https:// base URL"),
        ("http://", "--url: the URL names no host"),
        ("http://127.0.0.1:99999", "--url: not a valid URL (Port out of range"),
        ("http://127.0.0.1:0", "--url: port 0 cannot be connected to"),
    ],
)
def test_replay_url_that_is_not_http(tmp_path, url, expected):
    """Before: every request failed with error_kind 'client' and the run 'succeeded'."""
    out = tmp_path / "run"
    code, lines = cli(tmp_path, "replay", "azure-llm-2023-conv", "--url", url, "--out", str(out))
    assert code == 2
    assert one_error_line(lines).startswith(f"error: {expected}")
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--limit", "-1"], "--limit: must be ≥ 0, found -1"),
        (["--speedup", "nan"], "--speedup: must be a finite number > 0, found nan"),
        (["--speedup", "inf"], "--speedup: must be a finite number > 0, found inf"),
        (["--max-gap", "-1"], "--max-gap: must be a finite number ≥ 0, found -1.0"),
        (["--max-input-tokens", "0"], "--max-input-tokens: must be a whole number of tokens ≥ 1"),
        (["--max-output-tokens", "-3"], "--max-output-tokens: must be a whole number of tokens"),
        (["--timeout", "0"], "--timeout: must be a finite number of seconds > 0, found 0.0"),
        (["--late-after", "nan"], "--late-after: must be a finite number of seconds ≥ 0"),
        (["--max-concurrency", "0"], "--max-concurrency: must be ≥ 1, found 0"),
        (["--warmup", "2"], "--warmup: must be a fraction between 0 and 1, found 2.0"),
    ],
)
def test_replay_options_a_schedule_cannot_be_made_from(tmp_path, args, expected):
    out = tmp_path / "run"
    code, lines = cli(tmp_path, "replay", "azure-llm-2023-conv", "--url", "http://127.0.0.1:9",
                      *args, "--out", str(out))  # fmt: skip
    assert code == 2
    assert one_error_line(lines) == f"error: {expected}" or expected in lines[0]
    assert not out.exists()


def test_schedule_rejects_values_it_cannot_schedule():
    nan = float("nan")
    with pytest.raises(InputError, match=r"arrival_s: 1 of 3 rows have no finite arrival"):
        build_schedule(requests(arrival_s=[0.0, nan, 1.0]), ScheduleOptions())
    with pytest.raises(InputError, match=r"arrival_s: 2 of 3 rows have no finite arrival"):
        build_schedule(requests(arrival_s=[0.0, None, math.inf]), ScheduleOptions())
    with pytest.raises(InputError, match="too large to schedule"):
        build_schedule(requests(2, arrival_s=[-1e308, 1e308]), ScheduleOptions())
    with pytest.raises(InputError, match="input_tokens: 1 of 3 requests to send have no length"):
        build_schedule(requests(input_tokens=[1, None, 3]), ScheduleOptions())
    with pytest.raises(InputError, match="cannot be read as a requests table: conversion from"):
        build_schedule(requests(input_tokens=[1.0, nan, 3.0]), ScheduleOptions())
    with pytest.raises(UsageError, match=r"max_input_tokens: 1 scheduled request\(s\) ask for"):
        check_prompt_lengths(
            build_schedule(requests(input_tokens=[1, 2**31 - 1, 3]), ScheduleOptions())
        )
    # a negative limit used to keep all but the last rows (polars head(-n)); now refused
    with pytest.raises(UsageError, match="limit: must be ≥ 0, found -1"):
        build_schedule(requests(), ScheduleOptions(limit=-1))
    with pytest.raises(UsageError, match="min_output_tokens: 8 is more than max_output_tokens 4"):
        build_schedule(requests(), ScheduleOptions(min_output_tokens=8, max_output_tokens=4))
    # values that ARE schedulable: negative times, duplicates, negative lengths (clipped to 1)
    s = build_schedule(
        requests(arrival_s=[-5.0, -5.0, 1e9], input_tokens=[-4, 0, 7], output_tokens=[0, -1, 2]),
        ScheduleOptions(max_gap=1.0),
    )
    assert s.table["intended_s"].to_list() == [0.0, 0.0, 1.0]
    assert s.table["input_tokens"].to_list() == [1, 1, 7]
    assert s.table["output_tokens"].to_list() == [1, 1, 2]


def test_replay_out_that_is_a_file(tmp_path):
    (tmp_path / "run").write_text("x")
    config = ReplayConfig(client=ClientOptions(url="http://127.0.0.1:9"), progress=False)
    with pytest.raises(UsageError, match=r"out: .*run is a file; a run is written to a folder"):
        replay(requests(), config, tmp_path / "run")


def test_engine_port_in_use_or_out_of_range(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, lines = cli(tmp_path, "engine", "--instant", "--port", str(port))
        assert code == 1
        assert one_error_line(lines) == (
            f"error: cannot serve on 127.0.0.1:{port}: Address already in use; choose another "
            "port (0 picks a free one)"
        )
    for port in ("70000", "-1"):
        for extra in ([], ["--instant"]):
            code, lines = cli(tmp_path, "engine", *extra, "--port", port)
            assert code == 2
            assert one_error_line(lines) == (
                f"error: --port: expected a TCP port 1-65535 (0 picks a free one), got {port}"
            )


def test_run_folder_without_summary_or_with_foreign_files(tmp_path):
    run = tmp_path / "run"
    (run / "records").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    code, lines = cli(tmp_path, "card", str(run), "--out", str(tmp_path / "card"))
    assert code == 1
    assert one_error_line(lines).endswith(
        "summary.json: missing; is this a finished `burstlab replay` run directory?"
    )
    with pytest.raises(InputError, match=r"summary\.json: cannot read a run summary"):
        read_summary(run)
    (run / "summary.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="not a burstlab run summary; expected a JSON object"):
        read_summary(run)
    (run / "run.json").write_text("[]")
    code, lines = cli(tmp_path, "card", str(run), "--out", str(tmp_path / "card"))
    assert code == 1
    assert "run.json: not a burstlab run document; expected a JSON object" in one_error_line(lines)
    (run / "records" / "part-00000.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="records: cannot read the run's records"):
        read_records(run)
    assert not (tmp_path / "card").exists()


def test_session_think_times_from_unknown_latencies_stay_finite(instant_server, tmp_path):
    """Found by the replay fuzz suite: a NaN `source_latency_s` made the next turn's think time
    NaN, so its intended send time was NaN and writing summary.json failed (ValueError: Out of
    range float values are not JSON compliant). An unknown latency now counts as none."""
    server = instant_server()
    trace = requests(
        4, session_id=["a"] * 4, source_latency_s=[0.001, math.nan, math.inf, None],
    )  # fmt: skip
    config = ReplayConfig(client=ClientOptions(url=server.base_url), progress=False, report=False,
                          schedule=ScheduleOptions(max_gap=0.005))  # fmt: skip
    result = replay(trace, config, tmp_path / "run")
    think = result.schedule.table["think_s"].to_list()
    assert think[0] is None and think[1] == pytest.approx(0.005)  # 0.01 - 0.001, capped
    assert think[2:] == [0.005, 0.005]  # 0.01 gaps with no known latency, capped at max_gap
    assert result.records["intended_s"].is_finite().all()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["counts"]["completed"] == 4


def test_an_open_window_end_is_written_as_null(instant_server, tmp_path):
    """Found by the replay fuzz suite: `--window 300:` (end = infinity) made writing run.json
    fail (ValueError: Out of range float values are not JSON compliant: inf)."""
    server = instant_server()
    out = tmp_path / "run"
    code, lines = cli(tmp_path, "replay", "azure-llm-2023-conv", "--url", server.base_url,
                      "--window", "300:", "--limit", "2", "--max-gap", "0.01",
                      "--max-output-tokens", "2", "--out", str(out))  # fmt: skip
    assert code == 0, lines
    run = json.loads((out / "run.json").read_text())
    assert run["schedule"]["window"] == [300.0, None]
    assert json.loads((out / "summary.json").read_text())["counts"]["completed"] == 2


def test_engine_with_a_data_directory_that_is_a_file(tmp_path):
    """Before: internal error FileExistsError from creating the data directory."""
    (tmp_path / "afile").write_text("x")
    result = CliRunner().invoke(
        app, ["--data-dir", str(tmp_path / "afile"), "engine", "--port", "0"]
    )
    assert result.exit_code == 1
    assert one_error_line(result.output.strip().splitlines()) == (
        f"error: cannot create the data directory {tmp_path / 'afile'}: File exists"
    )
