"""The one-read ingest: t0 checked after the fact, counts from the stream, footer stamped last.

The files here are generated in the BurstGPT *format* (tests write them; no row is real).
"""

from __future__ import annotations

import importlib

import polars as pl
import pytest

from burstlab.errors import InputError
from burstlab.parquet import read_metadata
from burstlab.traces import ingest
from burstlab.traces.ingest import Tally

# the module, not the function `burstlab.traces.ingest` that the package exports
ingest_module = importlib.import_module("burstlab.traces.ingest")
HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"


def _count_sinks(monkeypatch) -> list[int]:
    """Make every streaming write append to the returned list (to count reads of the input)."""
    calls: list[int] = []
    real = ingest_module._sink

    def counted(frame, path, metadata):
        calls.append(1)
        return real(frame, path, metadata)

    monkeypatch.setattr(ingest_module, "_sink", counted)
    return calls


def _hidden(data_dir) -> list[str]:
    return [p.name for p in (data_dir / "parquet").rglob(".*")]


def test_time_ordered_file_is_read_once(tmp_path, data_dir, monkeypatch):
    path = tmp_path / "BurstGPT_1.csv"
    path.write_text(HEADER + "".join(f"{10 + i},ChatGPT,5,6,11,API log\n" for i in range(50)))
    sinks = _count_sinks(monkeypatch)
    result = ingest("burstgpt-1", [path])
    assert len(sinks) == 1
    assert result.rows_kept == 50 and result.span_s == 49.0
    assert read_metadata(result.path)["t0_source_s"] == 10.0


def test_earliest_row_after_the_probe_is_written_again_with_the_true_t0(
    tmp_path, data_dir, monkeypatch
):
    # the probe sees only the first 2 rows (t = 50, 40); the earliest kept row (t = 7) is the
    # 4th, after a dropped row with t = 1 that must not count as t0
    rows = ["50,ChatGPT,5,6,11,API log", "40,GPT-4,5,6,11,API log", "1,GPT-4,-3,6,3,API log"]
    rows += ["7,ChatGPT,5,0,5,Conversation log", "90,ChatGPT,5,6,11,API log"]
    path = tmp_path / "BurstGPT_1.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    monkeypatch.setattr(ingest_module, "_T0_PROBE_ROWS", 2)
    sinks = _count_sinks(monkeypatch)
    result = ingest("burstgpt-1", [path])
    assert len(sinks) == 2
    assert (result.rows_read, result.rows_kept) == (5, 4)
    assert result.dropped == {"negative token count": 1}
    assert result.span_s == 83.0
    df = pl.read_parquet(result.path)
    assert df["arrival_s"].to_list() == [0.0, 33.0, 43.0, 83.0]  # written in time order
    meta = read_metadata(result.path)
    assert meta["t0_source_s"] == 7.0 and meta["span_s"] == 83.0
    # kept in file order 50, 40, 7, 90: the 40 and the 90 keep their places
    assert (meta["input_time_sorted"], meta["rows_moved"]) == (False, 2)
    assert _hidden(data_dir) == []


def test_footer_written_before_the_last_batch_is_stamped_again(
    tmp_path, data_dir, monkeypatch, fixture_copy
):
    path = fixture_copy("BurstGPT_1.FIXTURE.csv", "BurstGPT_1.csv")
    real = ingest_module._sink
    # as if polars asked for the footer before the counts were complete
    monkeypatch.setattr(
        ingest_module, "_sink", lambda frame, p, metadata: real(frame, p, lambda: {"early": 1})
    )
    result = ingest("burstgpt-1", [path])
    meta = read_metadata(result.path)
    assert "early" not in meta
    assert (meta["rows_read"], meta["rows_kept"], meta["span_s"]) == (8, 6, 200.0)
    assert pl.read_parquet(result.path)["arrival_s"].to_list()[-1] == 200.0
    assert _hidden(data_dir) == []


def test_strict_stops_at_a_bad_row_deep_in_a_large_file(tmp_path, data_dir):
    n = 300_000  # several streaming batches
    frame = pl.DataFrame(
        {
            "Timestamp": pl.int_range(n, eager=True),
            "Model": "ChatGPT",
            "Request tokens": pl.Series([5] * n).scatter(250_000, -1),
            "Response tokens": 6,
            "Total tokens": 11,
            "Log Type": "API log",
        }
    )
    path = tmp_path / "BurstGPT_1.csv"
    frame.write_csv(path)
    with pytest.raises(InputError) as err:
        ingest("burstgpt-1", [path], strict=True)
    assert err.value.line == 250_002 and err.value.path == path
    assert "negative token count" in str(err.value)
    assert not (data_dir / "parquet").exists() or _hidden(data_dir) == []
    result = ingest("burstgpt-1", [path])  # lenient: the same row is counted, not fatal
    assert (result.rows_read, result.rows_kept) == (n, n - 1)
    assert result.dropped == {"negative token count": 1}
    assert result.span_s == n - 1


def test_tally_counts_batches_exactly():
    tally = Tally("t")
    for i in range(200):
        reason = ["bad"] if i % 10 == 0 else [None]
        batch = pl.DataFrame({"_drop_reason": reason * 3, "t": [i, i + 2, i + 1]})
        assert tally(batch.to_struct()).to_list() == reason * 3
    one_bad = pl.DataFrame({"_drop_reason": [None, "worse"], "t": [500, -7]})
    tally(one_bad.to_struct())  # the dropped row's time is not a kept time
    assert (tally.rows_read, tally.rows_kept) == (602, 541)
    assert tally.dropped == {"bad": 60, "worse": 1}
    assert (tally.lo, tally.hi) == (1, 500)
    with pytest.raises(ingest_module._StrictStop):
        Tally("t", strict=True)(one_bad.to_struct())
