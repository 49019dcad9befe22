"""Any CSV / JSONL / Parquet file, with a user-given column mapping and time unit.

``burstlab ingest generic FILE --map arrival_s=ts,input_tokens=prompt,output_tokens=completion
--time-unit ms`` maps source columns onto a canonical table (``requests`` by default). The
time column may be a number in s / ms / us / ns, or a timestamp string (``--time-unit
datetime`` with ``--time-format`` in polars/chrono syntax, e.g. ``%Y-%m-%dT%H:%M:%S%.fZ``).
Everything else works as for a named source: streaming, drops counted by reason, provenance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from burstlab.errors import InputError, UsageError
from burstlab.params import parse_pairs
from burstlab.paths import data_dir as resolve_data_dir
from burstlab.paths import parquet_dir
from burstlab.schema import REQUIRED, SCHEMAS
from burstlab.traces import catalog
from burstlab.traces.adapter import TIME_NS, Adapter, SourceFile, datetime_ns, null_in, seconds_ns
from burstlab.traces.ingest import IngestResult, convert, existing_metadata
from burstlab.traces.readers import READERS, parse_list

NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
TIME_UNITS = (*NS_PER_UNIT, "datetime")
_TIME_COLUMN = {
    "requests": "arrival_s",
    "function_requests": "arrival_s",
    "cold_starts": "arrival_s",
}


def parse_mapping(text: str | Sequence[str]) -> dict[str, str]:
    """``"arrival_s=ts,input_tokens=prompt"`` (or a list of such items) → {canonical: source}."""
    return parse_pairs(text, param="mapping", value=str, expected="canonical=source_column")


def file_format(path: Path) -> str:
    """csv / jsonl / parquet from the file name (compression suffix ignored)."""
    name = path.name.lower()
    for suffix in (".gz", ".xz", ".bz2"):
        name = name.removesuffix(suffix)
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


def adapter(
    mapping: Mapping[str, str],
    *,
    source_id: str,
    time_unit: str = "s",
    time_format: str | None = None,
    table: str = "requests",
    fmt: str = "csv",
) -> Adapter:
    """An Adapter for one user-described file layout (see the module docstring)."""
    if table not in SCHEMAS:
        raise UsageError(
            f"unknown table {table!r}; expected one of {sorted(SCHEMAS)}", param="table"
        )
    target = SCHEMAS[table]
    unknown = sorted(set(mapping) - set(target))
    if unknown:
        raise UsageError(
            f"names unknown {table} column(s) {unknown}; expected some of {list(target)}",
            param="mapping",
        )
    time_col = _TIME_COLUMN.get(table)
    needed = [c for c in REQUIRED[table] if c not in {"source", "failed"}]
    missing = [c for c in needed if c not in mapping]
    if missing:
        raise UsageError(
            f"must give {missing} for a {table} table; expected all of {needed}", param="mapping"
        )
    if time_unit not in TIME_UNITS:
        raise UsageError(
            f"unknown time unit {time_unit!r}; expected one of {list(TIME_UNITS)}",
            param="time_unit",
        )
    if time_unit == "datetime" and not time_format:
        raise UsageError(
            "a datetime time unit needs a timestamp format, e.g. %Y-%m-%d %H:%M:%S%.f",
            param="time_format",
        )

    columns: dict[str, pl.DataType] = {}
    for canonical, raw in mapping.items():
        if canonical == time_col:
            columns[raw] = pl.String() if time_unit == "datetime" else pl.Float64()
        elif target[canonical] == pl.Boolean():
            columns[raw] = pl.String()  # true/false/1/0, parsed below
        elif isinstance(target[canonical], pl.List):  # a CSV cell holds it as text: [1, 2]
            columns[raw] = pl.String() if fmt == "csv" else target[canonical]
        else:
            columns[raw] = pl.Int64() if target[canonical].is_integer() else target[canonical]

    def map_rows(names: list[str], sid: str, path: Path) -> list[pl.Expr]:
        exprs = [pl.lit(sid).alias("source")]
        for canonical, raw in mapping.items():
            if canonical == time_col:
                if time_unit == "datetime":
                    assert time_format is not None  # checked above: a datetime unit has a format
                    time = datetime_ns(raw, time_format)
                else:
                    time = seconds_ns(raw, NS_PER_UNIT[time_unit])
                exprs.append(time.alias(TIME_NS))
            elif target[canonical] == pl.Boolean():
                text = pl.col(raw).str.strip_chars().str.to_lowercase()
                exprs.append(text.is_in(["true", "1", "yes", "t"]).alias(canonical))
            elif isinstance(listed := target[canonical], pl.List) and fmt == "csv":
                exprs.append(parse_list(pl.col(raw), listed).alias(canonical))
            else:
                exprs.append(pl.col(raw).alias(canonical))
        if table == "requests" and "failed" not in mapping:
            exprs.append(pl.lit(False).alias("failed"))
        return exprs

    drop_when: dict[str, pl.Expr] = {}
    if time_col:
        drop_when[f"missing or unparsable {mapping[time_col]}"] = null_in(TIME_NS)
    for canonical in needed:
        if canonical != time_col:
            drop_when[f"missing or unparsable {mapping[canonical]}"] = null_in(canonical)
    if table == "requests":
        drop_when["negative token count"] = (pl.col("input_tokens") < 0) | (
            pl.col("output_tokens") < 0
        )
    return Adapter(
        family="generic",
        table=table,
        format=fmt,  # type: ignore[arg-type]
        columns=columns,
        map_rows=map_rows,
        drop_when=drop_when,
        sources=(SourceFile(source_id, "", note="user-described file"),),
        licence="as the file's owner states (unknown to burstlab)",
        citation="",
        homepage="",
        absolute_time=time_unit == "datetime",
    )


def ingest_generic(
    files: Sequence[str | Path],
    mapping: Mapping[str, str] | str | Sequence[str],
    *,
    time_unit: str = "s",
    time_format: str | None = None,
    table: str = "requests",
    source_id: str | None = None,
    data_dir: str | Path | None = None,
    strict: bool = False,
    show_progress: bool = False,
) -> IngestResult:
    """Ingest user-described files as one dataset (default id ``generic-<first file stem>``).

    Returns an `IngestResult`. The mapping and time unit are stored in the Parquet metadata,
    and a re-ingest with a different mapping is not skipped.
    """
    if not files:
        raise UsageError("generic ingest needs at least one file", param="files")
    paths = [Path(f) for f in files]
    mapping = dict(mapping) if isinstance(mapping, Mapping) else parse_mapping(mapping)
    sid = source_id or f"generic-{paths[0].name.split('.')[0]}"
    fmt = file_format(paths[0])
    if fmt not in READERS:
        raise InputError(paths[0], "unsupported format", expected=sorted(READERS))
    spec = adapter(
        mapping, source_id=sid, time_unit=time_unit, time_format=time_format, table=table, fmt=fmt
    )
    root = resolve_data_dir(data_dir)
    dest = parquet_dir(root, table) / f"{sid}.parquet"
    described = {"mapping": mapping, "time_unit": time_unit, "time_format": time_format}
    if dest.exists() and existing_metadata(dest).get("generic") != described:
        dest.unlink()  # same bytes, new mapping: the old file no longer says what the user means
    result = convert(
        spec,
        sid,
        paths,
        dest,
        strict=strict,
        extra_metadata={"sample": False, "generic": described},
        show_progress=show_progress,
    )
    catalog.refresh(root)
    return result
