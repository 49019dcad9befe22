"""The DuckDB catalog: ``<data-dir>/catalog.duckdb`` with one VIEW per canonical table over every
ingested Parquet file of that kind, so one SELECT spans sources, plus a ``sources`` table
(one row per dataset: rows, time span, drops, provenance) rebuilt from the Parquet metadata.

The views read ``<data-dir>/parquet/<table>/*.parquet`` by glob, so plain
``duckdb.connect("<data-dir>/catalog.duckdb")`` in a notebook sees every ingested file.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from burstlab.errors import InputError
from burstlab.parquet import read_metadata
from burstlab.paths import catalog_path, parquet_dir
from burstlab.paths import data_dir as resolve_data_dir
from burstlab.traces.registry import table_kinds, table_schema

_SOURCES_COLUMNS = (
    "source VARCHAR, table_name VARCHAR, rows BIGINT, rows_read BIGINT, rows_dropped BIGINT, "
    "dropped_by_reason VARCHAR, t0_utc VARCHAR, span_s DOUBLE, sample BOOLEAN, "
    "input_sha256 VARCHAR, licence VARCHAR, url VARCHAR, path VARCHAR, ingested_at VARCHAR"
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parquet_files(root: Path, kind: str) -> list[Path]:
    return sorted(parquet_dir(root, kind).glob("*.parquet"))


def _empty_view(kind: str) -> str:
    cols = ", ".join(
        f'CAST(NULL AS {_duck_type(field.type)}) AS "{field.name}"'
        for field in pl.DataFrame(schema=table_schema(kind)).to_arrow().schema
    )
    return f"SELECT {cols} WHERE false"


def _duck_type(arrow_type) -> str:
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _duck_type(arrow_type.value_type) + "[]"
    return {
        "string": "VARCHAR",
        "large_string": "VARCHAR",
        "string_view": "VARCHAR",
        "double": "DOUBLE",
        "int16": "SMALLINT",
        "int32": "INTEGER",
        "int64": "BIGINT",
        "bool": "BOOLEAN",
    }[str(arrow_type)]


def source_rows(root: Path) -> list[dict]:
    """One dict per ingested dataset, from its Parquet metadata (the `sources` table rows)."""
    rows = []
    for kind in table_kinds():
        for path in _parquet_files(root, kind):
            meta = read_metadata(path)
            dropped = meta.get("rows_dropped", {})
            rows.append(
                {
                    "source": meta.get("source", path.stem),
                    "table_name": kind,
                    "rows": meta.get("rows_kept"),
                    "rows_read": meta.get("rows_read"),
                    "rows_dropped": sum(dropped.values()),
                    "dropped_by_reason": json.dumps(dropped, sort_keys=True),
                    "t0_utc": meta.get("t0_utc"),
                    "span_s": meta.get("span_s"),
                    "sample": meta.get("sample"),
                    "input_sha256": meta.get("input_sha256"),
                    "licence": meta.get("licence"),
                    "url": meta.get("url"),
                    "path": str(path),
                    "ingested_at": meta.get("ingested_at"),
                }
            )
    return rows


def refresh(data_dir: str | Path | None = None) -> Path:
    """(Re)create the catalog's views and `sources` table from the Parquet files on disk."""
    root = resolve_data_dir(data_dir)
    path = catalog_path(root)
    with duckdb.connect(str(path)) as con:
        for kind in table_kinds():
            files = _parquet_files(root, kind)
            if files:
                glob = str(parquet_dir(root, kind) / "*.parquet")
                body = f"SELECT * FROM read_parquet({_quote(glob)}, union_by_name = true)"
            else:
                body = _empty_view(kind)
            con.execute(f"CREATE OR REPLACE VIEW {kind} AS {body}")
        con.execute(f"CREATE OR REPLACE TABLE sources ({_SOURCES_COLUMNS})")
        rows = source_rows(root)
        if rows:
            con.executemany(
                f"INSERT INTO sources VALUES ({', '.join('?' * len(rows[0]))})",
                [list(r.values()) for r in rows],
            )
    return path


def connect(
    data_dir: str | Path | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the catalog, its views refreshed (created on first use)."""
    root = resolve_data_dir(data_dir)
    path = catalog_path(root)
    if not read_only or not path.exists():
        refresh(root)
    return duckdb.connect(str(path), read_only=read_only)


def parquet_path(source: str, data_dir: str | Path | None = None) -> Path:
    """The Parquet file of an ingested dataset (InputError when it was never ingested)."""
    root = resolve_data_dir(data_dir)
    for kind in table_kinds():
        candidate = parquet_dir(root, kind) / f"{source}.parquet"
        if candidate.exists():
            return candidate
    ingested = sorted(p.stem for kind in table_kinds() for p in _parquet_files(root, kind))
    raise InputError(
        root,
        f"dataset {source!r} is not ingested in this data directory; ingest it first",
        expected=ingested or "an ingested dataset",
    )
