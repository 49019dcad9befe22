"""The DuckDB catalog: views span sources, plain duckdb works, re-ingest is a no-op."""

from __future__ import annotations

import json

import duckdb
from typer.testing import CliRunner

import burstlab
from burstlab.cli import app
from burstlab.parquet import read_metadata
from burstlab.traces import ingest, ingest_many


def test_view_spans_sources_with_plain_duckdb(data_dir):
    ingest_many(sample=True)
    with duckdb.connect(str(data_dir / "catalog.duckdb"), read_only=True) as con:
        counts = dict(con.sql("select source, count(*) from requests group by 1").fetchall())
        sources = con.sql("select source, rows, rows_dropped from sources order by 1").fetchall()
    assert counts == {
        "azure-llm-2023-code": 8_819,
        "azure-llm-2023-conv": 19_366,
        "mooncake-conversation": 3_000,
    }
    assert sources == [
        ("azure-llm-2023-code", 8_819, 0),
        ("azure-llm-2023-conv", 19_366, 0),
        ("mooncake-conversation", 3_000, 0),
    ]


def test_reingest_same_bytes_is_a_noop_and_changed_bytes_rewrite(tmp_path, samples, data_dir):
    src = tmp_path / "AzureLLMInferenceTrace_code.csv"
    src.write_bytes((samples / "azure" / "AzureLLMInferenceTrace_code.csv").read_bytes())
    first = ingest("azure-llm-2023-code", [src])
    mtime = first.path.stat().st_mtime_ns
    second = ingest("azure-llm-2023-code", [src])
    assert second.skipped and not first.skipped
    assert first.path.stat().st_mtime_ns == mtime
    assert (
        second.sha256
        == first.sha256
        == ("54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6")
    )
    # drop the last row: a different sha256 -> rewritten with one row fewer
    text = src.read_bytes()
    src.write_bytes(text[: text.rindex(b"\r\n")])
    third = ingest("azure-llm-2023-code", [src])
    assert not third.skipped and third.rows_kept == 8_818


def test_provenance_metadata(data_dir):
    result = ingest("azure-llm-2023-conv", sample=True)
    meta = read_metadata(result.path)
    assert meta["input_sha256"] == (
        "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8"
    )
    assert meta["url"].endswith("/data/AzureLLMInferenceTrace_conv.csv")
    assert meta["licence"].startswith("CC-BY-4.0")
    assert "Splitwise" in meta["citation"]
    assert meta["t0_utc"] == "2023-11-16T18:15:46.680590000Z"
    assert meta["rows_read"] == meta["rows_kept"] == 19_366 and meta["rows_dropped"] == {}
    assert meta["sample"] is True


def test_catalog_connect_sees_new_ingests(data_dir):
    con = burstlab.connect()
    assert con.sql("select count(*) from requests").fetchall() == [(0,)]
    con.close()
    ingest("mooncake-conversation", sample=True)
    with burstlab.connect() as con:
        row = con.sql(
            "select count(*), max(arrival_s), sum(len(hash_ids)) from requests"
        ).fetchall()[0]
    assert row[0] == 3_000 and row[1] == 987.0 and row[2] > 3_000


def test_cli_ingest_ls_sql(data_dir):
    runner = CliRunner()
    done = runner.invoke(app, ["--data-dir", str(data_dir), "ingest", "--sample"])
    assert done.exit_code == 0, done.output
    assert "19,366" in done.output
    again = runner.invoke(app, ["--data-dir", str(data_dir), "ingest", "--sample"])
    assert again.output.count("unchanged") == 3
    listed = runner.invoke(app, ["--data-dir", str(data_dir), "ls", "--json"])
    rows = {r["source"]: r for r in json.loads(listed.output)}
    assert rows["azure-llm-2023-code"]["rows"] == 8_819
    assert round(rows["azure-llm-2023-code"]["span_s"], 6) == 3435.948056
    out = runner.invoke(
        app,
        ["--data-dir", str(data_dir), "sql", "--csv", "select count(*) as n from requests"],
    )
    assert out.output.splitlines() == ["n", "31185"]


def test_cli_sources_and_generic_and_errors(data_dir, fixture_copy):
    from burstlab.traces.registry import source_ids

    runner = CliRunner()
    listed = runner.invoke(app, ["sources"])
    assert listed.exit_code == 0
    for sid in source_ids():
        assert sid in listed.output
    path = fixture_copy("generic_requests.FIXTURE.csv")
    done = runner.invoke(
        app,
        [
            "ingest",
            "generic",
            str(path),
            "--map",
            "arrival_s=ts_ms,input_tokens=prompt",
            "--map",
            "output_tokens=completion",
            "--time-unit",
            "ms",
            "--id",
            "mine",
        ],
    )
    assert done.exit_code == 0, done.output
    out = runner.invoke(app, ["sql", "--csv", "select max(arrival_s) m from requests"])
    assert out.output.splitlines() == ["m", "3.0"]
