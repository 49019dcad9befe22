"""The DuckDB catalog: ``<data-dir>/catalog.duckdb`` with one VIEW per canonical table over every
ingested Parquet file of that kind, so one SELECT spans sources, plus a ``sources`` table
(one row per dataset: rows, time span, drops, provenance) rebuilt from the Parquet metadata.

The views read ``<data-dir>/parquet/<table>/*.parquet`` by glob, so plain
``duckdb.connect("<data-dir>/catalog.duckdb")`` in a notebook sees every ingested file.

Concurrency: DuckDB lets one process write a database file, or several read it. burstlab
serialises its own writers (a refresh after each ingest, in any number of processes) with an
exclusive lock on ``<data-dir>/.catalog.lock`` (fcntl), and its readers open the catalog under
the shared lock, so they never meet a refresh half-way; the first to wait says so in one line
on stderr. A connection held open outside burstlab (a notebook) is waited for too, retrying
DuckDB's own lock for up to `LOCK_WAIT_S` seconds. A refresh is one transaction.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

try:  # POSIX; elsewhere burstlab's writers are not serialised (DuckDB still refuses a second)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

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


#: Seconds a catalog open waits for a DuckDB lock held outside burstlab before giving up.
LOCK_WAIT_S = 300.0
LOCK_NAME = ".catalog.lock"


def _waiting(message: str) -> None:
    print(f"burstlab: waiting: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _flock(root: Path, *, shared: bool) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            _waiting(f"another burstlab process is writing the catalog {catalog_path(root)}")
            fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def write_lock(data_dir: str | Path | None = None) -> Iterator[None]:
    """Hold the data directory's catalog write lock (what `refresh` holds while it writes)."""
    with _flock(resolve_data_dir(data_dir), shared=False):
        yield


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, retrying while another process holds the file (one line on stderr)."""
    deadline = None
    pause = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.ConnectionException as exc:
            if "different configuration" not in str(exc):
                raise InputError(path, f"cannot open the catalog ({_first_line(exc)})") from None
            held = "read-write" if read_only else "read-only"
            raise InputError(
                path,
                f"the catalog is already open {held} in this process; close that connection "
                "(con.close()) first — ingested files are kept, the next ingest or connect() "
                "refreshes the catalog",
            ) from None
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise InputError(
                    path,
                    f"not a usable DuckDB catalog ({_first_line(exc)}); remove it and "
                    "burstlab rebuilds it from the Parquet files",
                ) from None
            now = time.monotonic()
            if deadline is None:
                deadline = now + LOCK_WAIT_S
                _waiting(f"another process has the catalog {path} open (DuckDB allows one writer)")
            elif now > deadline:
                raise InputError(
                    path,
                    f"still held open by another process after {LOCK_WAIT_S:.0f} s; close that "
                    "connection and ingest again (ingested files are kept)",
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


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
            try:
                meta = read_metadata(path)
            except (OSError, ValueError, pa.ArrowException) as exc:
                raise InputError(
                    path, f"not a readable Parquet file ({_first_line(exc)}); remove or replace it"
                ) from None
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
    """(Re)create the catalog's views and `sources` table from the Parquet files on disk.

    Holds the catalog write lock, and writes in one transaction (see the module docstring).
    """
    root = resolve_data_dir(data_dir)
    path = catalog_path(root)
    with _flock(root, shared=False):
        rows = source_rows(root)
        with _open(path, read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            for kind in table_kinds():
                files = _parquet_files(root, kind)
                if files:
                    folder = parquet_dir(root, kind)
                    glob = str(folder / "*.parquet")
                    body = f"SELECT * FROM read_parquet({_quote(glob)}, union_by_name = true)"
                else:
                    folder, body = None, _empty_view(kind)
                try:
                    con.execute(f"CREATE OR REPLACE VIEW {kind} AS {body}")
                except duckdb.Error as exc:
                    con.execute("ROLLBACK")
                    raise InputError(
                        folder, f"cannot make the {kind} view ({_first_line(exc)})"
                    ) from None
            con.execute(f"CREATE OR REPLACE TABLE sources ({_SOURCES_COLUMNS})")
            if rows:
                con.executemany(
                    f"INSERT INTO sources VALUES ({', '.join('?' * len(rows[0]))})",
                    [list(r.values()) for r in rows],
                )
            con.execute("COMMIT")
    return path


def connect(
    data_dir: str | Path | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the catalog, its views refreshed (created on first use).

    Opened under the catalog lock (shared for `read_only`), so it waits for a refresh running
    in another process instead of failing on DuckDB's lock.
    """
    root = resolve_data_dir(data_dir)
    path = catalog_path(root)
    if not read_only or not path.exists():
        refresh(root)
    with _flock(root, shared=read_only):
        return _open(path, read_only=read_only)


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
