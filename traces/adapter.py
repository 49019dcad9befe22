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

Numbers: an adapter maps raw values as they are (Int64, Float64) and never casts them to a
narrower type itself. The engine checks every mapped column against the table's schema —
an integer outside the canonical type's range (int32 tokens, int16 ``num_images``) or a time
beyond ±`TIME_LIMIT_NS` is dropped with a reason, a NaN/±inf float becomes null (what an
unparsable cell is) — so no value can crash a cast or land in the Parquet as NaN. The time
helpers below never wrap: a value they cannot represent is null.
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
#: Times beyond ±2^62 ns (±146 years around the zero) are out of range: the difference of any
#: two in-range times fits in int64, so ``arrival_s`` can never wrap.
TIME_LIMIT_NS = 1 << 62
_INT64_MAX = (1 << 63) - 1


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

    A date outside 1678 … 2261 is null: polars parses it into nanoseconds by wrapping around
    int64 silently (year 2300 comes out as 1715), so the year is checked first — from the text
    when the format starts with ``%Y`` (cheap), else by a second parse in microseconds.
    """
    text = pl.col(column).str.strip_chars()
    parsed = text.str.to_datetime(fmt, time_unit="ns", strict=False)
    if any(tag in fmt for tag in ("%z", "%:z", "%#z")):
        parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    if fmt.startswith("%Y"):
        year = text.str.slice(0, 4).cast(pl.Int32, strict=False)
        four_digits = ~text.str.slice(4, 1).str.contains(r"\d")
        safe = year.is_between(1678, 2261) & four_digits
    else:  # the int64 nanosecond range in µs, a day short of it for any UTC offset
        wide = text.str.to_datetime(fmt, time_unit="us", strict=False).cast(pl.Int64)
        bound = _INT64_MAX // 1000 - 86_400_000_000
        safe = wide.is_between(-bound, bound)
    return pl.when(safe).then(parsed.cast(pl.Int64))


def seconds_ns(column: str, ns_per_unit: int) -> pl.Expr:
    """A numeric time column as Int64 nanoseconds; `ns_per_unit` is 10**6 for ms, 10**9 for s.

    An integer factor keeps integral inputs exact (1e-3 * 1e9 is not exactly 1e6 in floats).
    NaN, ±inf and values beyond int64 become null (the row is then dropped as unparsable).
    """
    return (pl.col(column).cast(pl.Float64) * ns_per_unit).round().cast(pl.Int64, strict=False)


def difference_ns(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``a − b`` of two Int64 nanosecond columns, saturating at the int64 limits instead of
    wrapping (polars integer arithmetic wraps silently), so an overflow reads as out of range."""
    wide = a.cast(pl.Int128) - b.cast(pl.Int128)
    return wide.clip(-_INT64_MAX, _INT64_MAX).cast(pl.Int64)


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
