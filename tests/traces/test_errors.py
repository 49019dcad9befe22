"""Bare ValueError/KeyError and polars/pyarrow/duckdb exceptions never reach a user from the
traces stage: each becomes one BurstlabError line naming the file (and field) — or, where the
damaged file is burstlab's own output, it is simply rebuilt."""

from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from burstlab.cli import app
from burstlab.errors import InputError
from burstlab.traces import catalog, ingest, ingest_generic

HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"


def _csv(path):
    path.write_text(HEADER + "1,ChatGPT,5,6,11,API log\n2,ChatGPT,5,6,11,API log\n")
    return path


def test_a_damaged_parquet_file_in_the_data_dir_is_named(tmp_path, data_dir):
    junk = data_dir / "parquet" / "requests" / "copied-by-hand.parquet"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError) as err:  # was pyarrow's ArrowInvalid
        ingest("burstgpt-1", [_csv(tmp_path / "BurstGPT_1.csv")])
    assert err.value.path == junk and "not a readable Parquet file" in str(err.value)
    assert "\n" not in str(err.value)
    done = CliRunner().invoke(app, ["--data-dir", str(data_dir), "ls"])
    assert done.exit_code == 1 and "copied-by-hand.parquet" in done.output
    assert "Traceback" not in done.output and "internal error" not in done.output


def test_a_damaged_earlier_output_is_rewritten(tmp_path, data_dir):
    path = _csv(tmp_path / "BurstGPT_1.csv")
    first = ingest("burstgpt-1", [path])
    first.path.write_bytes(b"half a file")  # the skip check read its footer: ArrowInvalid
    again = ingest("burstgpt-1", [path])
    assert not again.skipped and pl.read_parquet(again.path).height == 2
    generic = tmp_path / "my.csv"
    generic.write_text("t,p,c\n0,1,2\n")
    done = ingest_generic([generic], "arrival_s=t,input_tokens=p,output_tokens=c")
    done.path.write_bytes(b"junk")
    redone = ingest_generic([generic], "arrival_s=t,input_tokens=p,output_tokens=c")
    assert pl.read_parquet(redone.path).height == 1


def test_a_catalog_file_that_is_not_duckdb_is_named(tmp_path, data_dir):
    (data_dir / "catalog.duckdb").write_bytes(b"not a database" * 1000)
    with pytest.raises(InputError) as err:  # was a duckdb exception
        catalog.refresh(data_dir)
    assert err.value.path == data_dir / "catalog.duckdb"
    assert "not a usable DuckDB catalog" in str(err.value) and "\n" not in str(err.value)
