"""Resolve what a user names as SOURCE: a Parquet file, an ingested dataset id or a shipped sample.

Every command and function that takes a SOURCE resolves it here, so they all accept the same
things and fail with the same message. It sits above the catalog and the embedded samples
(catalog ← ingest ← embedded ← scan), so the traces stage has no import cycle.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from burstlab.errors import InputError
from burstlab.traces.catalog import parquet_path
from burstlab.traces.embedded import SAMPLES, sample_frame


def open(source: str, data_dir: str | Path | None = None) -> pl.LazyFrame:
    """An ingested dataset's canonical table as a polars LazyFrame (nothing read until collect)."""
    return pl.scan_parquet(parquet_path(source, data_dir))


def scan(source: str | Path, data_dir: str | Path | None = None) -> pl.LazyFrame:
    """A canonical table from whatever a user names as SOURCE: a Parquet file path, an ingested
    dataset id, or a shipped sample's name (read from the package when it is not ingested)."""
    path = Path(source)
    if path.suffix == ".parquet":
        if not path.is_file():
            raise InputError(path, "no such Parquet file")
        return pl.scan_parquet(path)
    try:
        return open(str(source), data_dir)
    except InputError:
        if str(source) in SAMPLES:
            return sample_frame(str(source)).lazy()
        raise
