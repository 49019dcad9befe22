"""`scan`: the one resolver behind every SOURCE argument."""

from __future__ import annotations

import polars as pl
import pytest

from burstlab.errors import InputError
from burstlab.traces import ingest, sample_frame, scan


def test_shipped_sample_is_read_from_the_package_when_not_ingested(data_dir):
    assert not any(data_dir.rglob("*.parquet"))
    assert scan("azure-llm-2023-code").collect().height == 8_819


def test_ingested_dataset_is_read_from_its_parquet(data_dir):
    result = ingest("azure-llm-2023-conv", sample=True)
    lf = scan("azure-llm-2023-conv")
    assert lf.collect().height == 19_366
    assert lf.collect().equals(pl.read_parquet(result.path))


def test_parquet_path(tmp_path):
    path = tmp_path / "mine.parquet"
    sample_frame("mooncake-conversation").head(7).write_parquet(path)
    assert scan(path).collect().height == 7
    with pytest.raises(InputError, match="no such Parquet file"):
        scan(tmp_path / "missing.parquet")


def test_unknown_name_says_it_is_not_ingested():
    with pytest.raises(InputError, match="'nope' is not ingested in this data directory"):
        scan("nope")
