"""What a source adapter declares: the shape of one trace family, and nothing about how to stream.

Each source module (`azure_llm.py`, `burstgpt.py`, …) builds one `Adapter`: where the files
come from, their licence and citation, the raw columns it expects BY NAME, how to turn a raw
row into a canonical row, and which rows to drop (each drop reason an expression). The shared
engine in `ingest.py` does the reading, counting, and atomic writing, so adapters hold no
loader code. What the source's documentation (or reading its files) says a user must know —
the caveats a dataset card lists — lives here too: `Adapter.caveats` for the whole family
table, `SourceFile.caveats` for one dataset; `registry.source_info` joins them.

`map_rows(names, source_id, path)` gets the raw column names present in the file (after an
optional `reshape`, e.g. wide per-minute tables → long) and the file's path (some sources
encode the day or region in it) and returns the canonical columns as polars expressions; the
engine selects them (plus the line number).
The time contract between an adapter and the engine: `map_rows` returns a column ``_t_ns``
(Int64 nanoseconds — since the Unix epoch when `absolute_time` is true, else since the
source's own zero). The engine subtracts the earliest kept ``_t_ns`` and writes ``arrival_s``
in float seconds, so the first request is 0.0 and 100 ns ticks (Azure) survive exactly.
Tables without per-row times (``invocations``) return no ``_t_ns`` and set their own columns.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from burstlab.errors import UsageError

Format = Literal["csv", "jsonl", "parquet"]

#: Name of the Int64 time column an adapter's `map_rows` produces (see module docstring).
TIME_NS = "_t_ns"


@dataclass(frozen=True)
class SourceFile:
    """One dataset of a family: its canonical id and the official file it comes from."""

    id: str  # canonical source id, e.g. "azure-llm-2023-conv"; also the Parquet file stem
    filename: str  # official file name; `ingest FAMILY FILE` matches files to ids by it
    url: str | None = None  # official download URL (None: no direct link, see the docs page)
    sha256: str | None = None  # of the official file, when known (checked by `fetch`)
    size: int | None = None  # bytes of the official file, when known
    sample: str | None = None  # path under traces/samples/ of a shipped real copy or excerpt
    note: str = ""  # one line shown by `burstlab sources`
    # fnmatch patterns of the file names that hold this dataset (one per day, say); default:
    # the official file name. Archive members are matched by these too.
    patterns: tuple[str, ...] = ()
    # what this dataset's documentation (or reading its files) says a user must know, one
    # sentence each; listed after the family's `Adapter.caveats` (see `registry.source_info`)
    caveats: tuple[str, ...] = ()

    def matches(self, name: str) -> bool:
        """Whether a file called `name` (compression suffix ignored) belongs to this dataset."""
        bare = name
        for suffix in (".gz", ".xz", ".bz2"):
            bare = bare.removesuffix(suffix)
        return any(fnmatch.fnmatch(bare, p) for p in self.patterns or (self.filename,)) or (
            name == self.filename
        )


@dataclass(frozen=True)
class Adapter:
    """A declarative description of one trace family (see the module docstring)."""

    family: str  # e.g. "azure-llm"; `burstlab ingest azure-llm FILE` resolves ids by file name
    table: str  # canonical table kind the rows map onto (burstlab.schema)
    format: Format
    columns: Mapping[str, pl.DataType]  # raw columns required, by name, with their read type
    map_rows: Callable[[list[str], str, Path], list[pl.Expr]]  # (names, id, path) -> canonical
    drop_when: Mapping[str, pl.Expr]  # reason -> predicate on the MAPPED frame; first match wins
    sources: tuple[SourceFile, ...]
    licence: str
    citation: str
    homepage: str
    absolute_time: bool = True  # _t_ns is Unix-epoch ns (so t0_utc is known)
    optional_columns: Mapping[str, pl.DataType] = field(default_factory=dict)
    version: int = 1  # bump when the mapping changes, so re-ingest is not skipped
    # Wide tables: every column not named in `columns` is read with this type (e.g. the 1,440
    # minute columns of Azure Functions 2019), and `reshape` turns the raw frame long.
    wide_type: pl.DataType | None = None
    reshape: Callable[[pl.LazyFrame, list[str]], pl.LazyFrame] | None = None
    # Tables that are not canonical (burstlab.schema) give their own schema here, e.g. the
    # Azure Functions 2019 duration percentiles; they get a catalog view all the same.
    schema: Mapping[str, pl.DataType] | None = None
    # caveats that hold for every dataset of this adapter (see `SourceFile.caveats`)
    caveats: tuple[str, ...] = ()

    def source(self, source_id: str) -> SourceFile:
        """The SourceFile with this id (UsageError when the family has no such id)."""
        for src in self.sources:
            if src.id == source_id:
                return src
        raise UsageError(
            f"{self.family} ({self.table}) has no dataset {source_id!r}; "
            f"expected one of {[src.id for src in self.sources]}",
            param="source_id",
        )


# ---- small expression helpers adapters share (parsing lives here, not in each adapter) ----


def datetime_ns(column: str, fmt: str) -> pl.Expr:
    """Parse a timestamp string column into Int64 Unix-epoch nanoseconds; null when unparsable.

    ``%.f`` takes any number of fractional digits, or none (Azure 2023 has 7, which Python's
    strptime cannot parse; Azure 2024 mixes ``…00.009930+00:00`` and ``…00+00:00``). A format
    with ``%z``/``%:z``/``%#z`` converts offsets to UTC; naive values are taken as UTC.
    """
    parsed = pl.col(column).str.strip_chars().str.to_datetime(fmt, time_unit="ns", strict=False)
    if any(tag in fmt for tag in ("%z", "%:z", "%#z")):
        parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return parsed.cast(pl.Int64)


def seconds_ns(column: str, ns_per_unit: int) -> pl.Expr:
    """A numeric time column as Int64 nanoseconds; `ns_per_unit` is 10**6 for ms, 10**9 for s.

    An integer factor keeps integral inputs exact (1e-3 * 1e9 is not exactly 1e6 in floats).
    """
    return (pl.col(column).cast(pl.Float64) * ns_per_unit).round().cast(pl.Int64)


def arrival_seconds(t0_ns: int) -> pl.Expr:
    """``arrival_s`` = (``_t_ns`` − `t0_ns`) / 1e9, correctly rounded.

    Computed with numpy's true division: polars divides by multiplying with the reciprocal,
    which makes 987 s come out as 987.0000000000001.
    """
    return (
        pl.col(TIME_NS)
        .map_batches(
            lambda t: pl.Series("arrival_s", (t.to_numpy() - t0_ns) / 1e9),
            return_dtype=pl.Float64,
            is_elementwise=True,
        )
        .alias("arrival_s")
    )


def null_in(*columns: str) -> pl.Expr:
    """True when any of `columns` is null (missing or unparsable in the raw file)."""
    return pl.any_horizontal([pl.col(c).is_null() for c in columns])
