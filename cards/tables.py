"""The table a card publishes, read and checked before any chart or statistic is made of it.

A card describes a canonical table; a file that only looks like one (no rows, a required column
missing or null, lengths that are not numbers) would otherwise fail deep inside a chart or a
statistic with a polars or Vega error. Here it is one `InputError` / `SchemaError` naming the
file and what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa

from burstlab.errors import InputError
from burstlab.schema import REQUIRED, conform, schema


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def read_table(path: Path, kind: str = "requests", *, shown_as: Path | None = None) -> pl.DataFrame:
    """The canonical `kind` table in the Parquet file `path` (cast to its canonical types for a
    requests table, as read for another kind). `shown_as` is the path errors name (the user's
    file, when `path` is the card's copy of it)."""
    name = shown_as or path
    schema(kind)  # SchemaError for a kind burstlab does not know
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as exc:
        raise InputError(name, f"not a readable Parquet file ({_first_line(exc)})") from None
    if frame.height == 0:
        raise InputError(name, f"the {kind} table has no rows; a card describes at least one")
    try:
        canonical = conform(frame, kind).collect()
    except pl.exceptions.PolarsError as exc:
        raise InputError(name, f"not a canonical {kind} table ({_first_line(exc)})") from None
    nulls = [c for c in REQUIRED[kind] if canonical[c].null_count()]
    if nulls:
        raise InputError(
            name, f"required column(s) {nulls} hold nulls", expected="a value in every row"
        )
    if kind == "requests":
        finite = canonical["arrival_s"].is_finite().all()
        if not finite:
            raise InputError(name, "arrival times that are not finite", field="arrival_s")
        return canonical
    return frame
