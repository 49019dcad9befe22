"""Ingest writes rows in time order (stable), and says when the input was not.

Later stages rely on "the first row is 0.0" and "arrivals are sorted". An input out of time
order is sorted at ingest — ties keep the file's order — and the Parquet metadata records
``input_time_sorted: false`` and ``rows_moved``: how many kept rows sit at a different position
in the written file than among the kept rows in file order. Sorted input pays nothing: the
check runs inside the one streaming read. The files are generated in the BurstGPT *format*.
"""

from __future__ import annotations

import importlib
import os

import polars as pl
import pytest

from burstlab.parquet import read_metadata, write_atomic
from burstlab.traces import ingest, ingest_many, open

ingest_module = importlib.import_module("burstlab.traces.ingest")
HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"


def _burstgpt(path, times, tokens=None) -> None:
    tokens = tokens or [5] * len(times)
    path.write_text(
        HEADER
        + "".join(f"{t},ChatGPT,{k},6,11,API log\n" for t, k in zip(times, tokens, strict=True))
    )


def _count_sinks(monkeypatch) -> list[str | None]:
    """Every streaming write appends the memory budget polars' out-of-core sort had then."""
    calls: list[str | None] = []
    real = ingest_module._sink

    def counted(frame, path, metadata):
        calls.append(os.environ.get("POLARS_OOC_MEMORY_BUDGET_MB"))
        return real(frame, path, metadata)

    monkeypatch.setattr(ingest_module, "_sink", counted)
    return calls


def test_rows_out_of_time_order_are_sorted_and_the_move_recorded(tmp_path, data_dir):
    path = tmp_path / "BurstGPT_1.csv"
    _burstgpt(path, [45, 0, 15])  # the reported file: arrival_s came out 45, 0, 15
    result = ingest("burstgpt-1", [path])
    assert pl.read_parquet(result.path)["arrival_s"].to_list() == [0.0, 15.0, 45.0]
    meta = read_metadata(result.path)
    assert (meta["input_time_sorted"], meta["rows_moved"]) == (False, 3)
    assert (result.input_time_sorted, result.rows_moved) == (False, 3)
    assert meta["t0_source_s"] == 0.0 and meta["span_s"] == 45.0


def test_ties_keep_file_order_and_only_displaced_rows_count_as_moved(tmp_path, data_dir):
    path = tmp_path / "BurstGPT_1.csv"
    _burstgpt(path, [5, 3, 5, 3, 1], tokens=[50, 30, 51, 31, 10])
    result = ingest("burstgpt-1", [path])
    df = pl.read_parquet(result.path)
    assert df["input_tokens"].to_list() == [10, 30, 31, 50, 51]
    assert df["arrival_s"].to_list() == [0.0, 2.0, 2.0, 4.0, 4.0]
    # file positions 4, 1, 3, 0, 2 -> written 0..4: only the 30 stays where it was
    assert result.rows_moved == 4


def test_dropped_rows_neither_move_nor_set_t0(tmp_path, data_dir):
    path = tmp_path / "BurstGPT_1.csv"
    path.write_text(
        HEADER + "10,ChatGPT,5,6,11,API log\n1,ChatGPT,-5,6,1,API log\n"
        "20,ChatGPT,7,6,13,API log\n15,ChatGPT,8,6,14,API log\n"
    )
    result = ingest("burstgpt-1", [path])
    assert result.dropped == {"negative token count": 1}
    df = pl.read_parquet(result.path)
    assert df["arrival_s"].to_list() == [0.0, 5.0, 10.0]
    assert df["input_tokens"].to_list() == [5, 8, 7]
    assert (result.input_time_sorted, result.rows_moved) == (False, 2)


def test_sorted_input_is_read_once_and_says_so(tmp_path, data_dir, monkeypatch):
    path = tmp_path / "BurstGPT_1.csv"
    _burstgpt(path, [3, 3, 4, 9])  # ties are in order
    sinks = _count_sinks(monkeypatch)
    result = ingest("burstgpt-1", [path])
    assert sinks == [None]  # one read, and no sort
    meta = read_metadata(result.path)
    assert (meta["input_time_sorted"], meta["rows_moved"]) == (True, 0)


def test_the_sort_runs_under_a_bounded_memory_budget(tmp_path, data_dir, monkeypatch):
    path = tmp_path / "BurstGPT_1.csv"
    _burstgpt(path, [2, 1])
    monkeypatch.delenv("POLARS_OOC_MEMORY_BUDGET_MB", raising=False)
    sinks = _count_sinks(monkeypatch)
    ingest("burstgpt-1", [path])
    assert sinks == [None, str(ingest_module.SORT_MEMORY_MB)]  # set for the sort only
    assert "POLARS_OOC_MEMORY_BUDGET_MB" not in os.environ
    monkeypatch.setenv("POLARS_OOC_MEMORY_BUDGET_MB", "1000")  # a user's own budget wins
    _burstgpt(path, [3, 1])
    sinks.clear()
    ingest("burstgpt-1", [path])
    assert sinks == ["1000", "1000"]
    assert os.environ["POLARS_OOC_MEMORY_BUDGET_MB"] == "1000"


def test_sorted_file_whose_probe_keeps_nothing_is_written_again_unsorted(
    tmp_path, data_dir, monkeypatch
):
    path = tmp_path / "BurstGPT_1.csv"
    path.write_text(
        HEADER + "1,ChatGPT,-1,6,5,API log\n2,ChatGPT,-1,6,5,API log\n"
        "7,ChatGPT,5,6,11,API log\n9,ChatGPT,5,6,11,API log\n"
    )
    monkeypatch.setattr(ingest_module, "_T0_PROBE_ROWS", 2)
    sinks = _count_sinks(monkeypatch)
    result = ingest("burstgpt-1", [path])
    assert sinks == [None, None]  # the true t0 needs a second write, but no sort
    assert pl.read_parquet(result.path)["arrival_s"].to_list() == [0.0, 2.0]
    assert (result.input_time_sorted, result.rows_moved) == (True, 0)


def _big(path, times) -> None:
    n = len(times)
    pl.DataFrame(
        {
            "Timestamp": times,
            "Model": "ChatGPT",
            "Request tokens": pl.int_range(n, eager=True),  # the file position
            "Response tokens": 6,
            "Total tokens": 11,
            "Log Type": "API log",
        }
    ).write_csv(path)


def test_disorder_only_across_streaming_batches_is_found(tmp_path, data_dir):
    """Every batch is sorted in itself; only the batch boundaries are out of order."""
    n = 300_000
    half = n // 2
    times = pl.concat([pl.int_range(half, n, eager=True), pl.int_range(0, half, eager=True)])
    path = tmp_path / "BurstGPT_1.csv"
    _big(path, times)
    result = ingest("burstgpt-1", [path])
    df = pl.read_parquet(result.path)
    assert df["arrival_s"].is_sorted() and df["arrival_s"][0] == 0.0
    assert df["input_tokens"][0] == half and df["input_tokens"][-1] == half - 1
    assert (result.input_time_sorted, result.rows_moved) == (False, n)


def test_one_late_row_deep_in_a_large_file(tmp_path, data_dir):
    n = 300_000
    times = pl.int_range(n, eager=True).scatter(250_000, 5)
    path = tmp_path / "BurstGPT_1.csv"
    _big(path, times)
    result = ingest("burstgpt-1", [path])
    df = pl.read_parquet(result.path)
    assert df["arrival_s"].is_sorted()
    # the late row (t = 5) lands after the first t = 5 row; rows 6 … 249,999 shift by one
    assert df["input_tokens"][5:8].to_list() == [5, 250_000, 6]
    assert result.rows_moved == 1 + (250_000 - 6)
    sorted_path = tmp_path / "sorted" / "BurstGPT_1.csv"
    sorted_path.parent.mkdir()
    _big(sorted_path, pl.int_range(n, eager=True))
    again = ingest("burstgpt-1", [sorted_path])
    assert (again.input_time_sorted, again.rows_moved) == (True, 0)


def test_tables_without_per_row_times_keep_file_order(tmp_path, data_dir):
    """Per-minute tables have no arrival_s: rows stay as the wide table unrolls (by function)."""
    path = tmp_path / "day_00.csv"
    path.write_text("day,time,f1,f2\n0,0,1,2\n0,60,3,4\n")
    result = ingest("huawei-2025-requests-minute", [path])
    meta = read_metadata(result.path)
    assert (meta["input_time_sorted"], meta["rows_moved"]) == (None, None)
    df = open(result.source).collect()
    assert df.select("function", "minute").rows() == [("f1", 0), ("f1", 1), ("f2", 0), ("f2", 1)]


def test_a_file_written_by_the_older_unsorting_engine_is_not_skipped(tmp_path, data_dir):
    path = tmp_path / "BurstGPT_1.csv"
    _burstgpt(path, [45, 0, 15])
    first = ingest("burstgpt-1", [path])
    meta = read_metadata(first.path)
    old = {k: v for k, v in meta.items() if k not in {"ingest_version"}}
    write_atomic(pl.read_parquet(first.path).reverse(), first.path, old)  # as the old engine
    again = ingest("burstgpt-1", [path])
    assert not again.skipped
    assert pl.read_parquet(again.path)["arrival_s"].to_list() == [0.0, 15.0, 45.0]
    assert ingest("burstgpt-1", [path]).skipped


@pytest.mark.parametrize(
    "name", ["azure-llm-2023-code", "azure-llm-2023-conv", "mooncake-conversation"]
)
def test_shipped_samples_are_time_sorted(data_dir, name):
    (result,) = ingest_many(name, sample=True)
    assert (result.input_time_sorted, result.rows_moved) == (True, 0)


def test_the_cli_and_the_summary_say_the_rows_were_sorted(tmp_path, data_dir):
    from typer.testing import CliRunner

    from burstlab.cli import app

    path = tmp_path / "BurstGPT_1.csv"
    _burstgpt(path, [45, 0, 15])
    done = CliRunner().invoke(app, ["ingest", "burstgpt-1", str(path)])
    assert done.exit_code == 0, done.output
    assert "burstgpt-1: rows were not in time order: sorted, 3 moved" in done.output
    result = ingest("burstgpt-1", [path])  # unchanged: read back from the metadata
    assert result.skipped and (result.input_time_sorted, result.rows_moved) == (False, 3)
    captions = [caption for caption, _ in result.summary().sections]
    assert "input not in time order: rows sorted by time" in captions
