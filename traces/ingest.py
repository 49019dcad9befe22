"""The ingest engine: raw trace files → one canonical Parquet file per dataset, streaming.

One streaming read of the input does everything, so memory stays bounded whatever the size:
polars parses the file in parallel and its native Parquet sink writes the kept rows through
the canonical schema, while a per-batch tally in the same query counts rows by drop reason,
tracks the kept rows' earliest and latest time, and checks that the kept times are in file
order. ``arrival_s`` = (time − t0) seconds needs t0, the earliest kept time, before the first
row is written: it is taken from the first rows (traces are in time order) and checked
against the tally at the end.

Rows are written in time order (later stages rely on sorted arrivals starting at 0.0). A
time-sorted input — the usual case — is read once. An input out of time order is written a
second time through polars' streaming sort (stable: ties keep the file's order; spilled to
disk beyond `SORT_MEMORY_MB`), with the true t0, and the metadata records
``input_time_sorted: false`` and ``rows_moved``: the kept rows whose position in the written
file differs from their position among the kept rows in file order. A sorted input whose
first rows hold no kept row is written a second time for its t0 alone.

Values no canonical column can hold are drop reasons of the engine's own, after the
adapter's (see `adapter.py`): integers outside their column's type, times beyond ±2^62 ns,
required values still missing; NaN/±inf floats become null first. The sha256 of the input is
computed in a thread beside the read (hashlib releases the GIL). The provenance, counts
included, goes into the Parquet footer as it is closed, and the file is written under a
unique hidden temporary name in the destination folder, then renamed into place (atomic).
Rows read always equal rows kept plus the sum of dropped rows, and the metadata says so.
Re-ingesting the same bytes (same sha256, adapter version and `INGEST_VERSION`) writes
nothing. Row line numbers are computed only for a ``--strict`` error, by a second scan.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from burstlab import __version__
from burstlab.errors import InputError, UsageError
from burstlab.parquet import METADATA_KEY, finalize_atomic, read_metadata
from burstlab.paths import data_dir as resolve_data_dir
from burstlab.paths import downloads_dir, parquet_dir
from burstlab.progress import progress
from burstlab.results import Result, Summary
from burstlab.scalars import integer
from burstlab.schema import REQUIRED, SCHEMAS, conform
from burstlab.traces import catalog, registry
from burstlab.traces.adapter import TIME_LIMIT_NS, TIME_NS, Adapter, SourceFile, arrival_seconds
from burstlab.traces.archives import is_archive, unpack
from burstlab.traces.readers import LINE, READERS, ColumnSpec, decompressed, peek_columns

_REASON = "_drop_reason"
_FILE = "_file"
_ROW = "_row"  # position of a row in the input (all files in order), for the order check
_POS = "_pos"  # position of a kept row among the kept rows in file order
_NEW = "_new"  # its position in the written (sorted) file
#: Rows at the head of the input whose earliest kept time is taken as t0 before writing.
_T0_PROBE_ROWS = 1 << 16
#: Version of what the engine writes from the same adapter output; part of the skip check, so
#: files of an older engine are rewritten (2: rows sorted by time, values range-checked).
INGEST_VERSION = 2
#: Memory polars' streaming sort may hold before it spills to disk (MB), unless the user sets
#: POLARS_OOC_MEMORY_BUDGET_MB or POLARS_OOC_MEMORY_BUDGET_FRACTION themselves.
SORT_MEMORY_MB = 256
_BUDGET_ENV = "POLARS_OOC_MEMORY_BUDGET_MB"
_BUDGET_ENVS = (_BUDGET_ENV, "POLARS_OOC_MEMORY_BUDGET_FRACTION")
#: Integer columns whose range problem has one name for every source.
_RANGE_REASONS = {
    "input_tokens": "token count out of range",
    "output_tokens": "token count out of range",
}


@dataclass
class IngestResult(Result):
    """What one ingest did. `rows_read == rows_kept + sum(dropped.values())` always."""

    source: str  # dataset id, also the Parquet file stem
    table_kind: str  # canonical table kind (requests, invocations, …)
    path: Path  # the Parquet file
    sha256: str  # of the input bytes (one file: its sha256; several: sha256 of their hashes)
    rows_read: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    skipped: bool = False  # True: same input as the existing file, nothing written
    t0_utc: str | None = None  # wall-clock time of arrival_s = 0 when the source has one
    span_s: float | None = None  # last arrival_s (seconds); None for per-minute tables
    seconds: float = 0.0  # wall time this ingest took
    # whether the kept rows came in time order (None: a table without per-row times) and how
    # many of them the sort put at another position (0 when they were in order)
    input_time_sorted: bool | None = None
    rows_moved: int | None = None

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}

    def table(self) -> pl.DataFrame:
        """One row: the dataset, its table, rows read / kept / dropped, span, what happened."""
        return pl.DataFrame(
            [
                {
                    "source": self.source,
                    "table": self.table_kind,
                    "rows_read": self.rows_read,
                    "rows_kept": self.rows_kept,
                    "rows_dropped": self.rows_dropped,
                    "span_s": self.span_s,
                    "status": "unchanged (skipped)" if self.skipped else "written",
                    "seconds": self.seconds,
                }
            ],
            schema_overrides={"span_s": pl.Float64},
        )

    def summary(self) -> Summary:
        s = Summary(f"ingest of {self.source} → {self.path}").add("rows", self.table())
        if self.input_time_sorted is False:
            moved = pl.DataFrame({"rows_kept": [self.rows_kept], "rows_moved": [self.rows_moved]})
            s.add("input not in time order: rows sorted by time", moved)
        if self.dropped:
            reasons = [{"reason": r, "rows": n} for r, n in sorted(self.dropped.items())]
            s.add("rows dropped, by reason", pl.DataFrame(reasons))
        return s


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks (bounded memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _hash_all(files: Sequence[Path]) -> list[str]:
    """The sha256 of each input; an unreadable one is an InputError naming it."""
    try:
        return [sha256_file(f) for f in files]
    except OSError as exc:
        where = exc.filename or files[0]
        raise InputError(where, f"cannot read it ({exc.strerror or exc})") from None


def _combined_sha(hashes: Sequence[str]) -> str:
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def _reason_expr(reasons: Mapping[str, pl.Expr]) -> pl.Expr:
    expr = None
    for reason, predicate in reasons.items():
        expr = (pl.when(predicate) if expr is None else expr.when(predicate)).then(pl.lit(reason))
    return pl.lit(None, pl.String) if expr is None else expr.otherwise(pl.lit(None, pl.String))


def _int_range(dtype: pl.DataType) -> tuple[int, int]:
    info = np.iinfo(str(dtype).lower())  # "Int32" -> int32
    return int(info.min), int(info.max)


def guards(table: str, mapped: pl.Schema) -> dict[str, pl.Expr]:
    """The engine's own drop reasons for a table, checked after the adapter's.

    A time beyond ±``TIME_LIMIT_NS``; a value outside the integer type its column has in the
    table (int32 tokens, minute, count; int16 num_images, day), which would otherwise fail
    the cast; a required column still null. Each reason names the column (tokens share one).
    """
    out: dict[str, pl.Expr] = {}
    if TIME_NS in mapped:
        t = pl.col(TIME_NS)
        out["missing time"] = t.is_null()
        out["time out of range"] = (t < -TIME_LIMIT_NS) | (t > TIME_LIMIT_NS)
    for name, dtype in registry.table_schema(table).items():
        have = mapped.get(name)
        if have is None or have == dtype or not dtype.is_integer() or not have.is_numeric():
            continue
        lo, hi = _int_range(dtype)
        outside = pl.col(name) > hi
        if not have.is_unsigned_integer():
            outside = outside | (pl.col(name) < lo)
        reason = _RANGE_REASONS.get(name, f"{name} out of range")
        out[reason] = out[reason] | outside if reason in out else outside
    for name in REQUIRED.get(table, ()):
        if name in mapped and mapped[name] != pl.Null():
            out.setdefault(f"missing {name}", pl.col(name).is_null())
    return out


def _finite(mapped: pl.Schema) -> list[pl.Expr]:
    """NaN and ±inf become null in every float column: "not a number" is not available data,
    like an unparsable cell; a required column then drops the row by its null check."""
    return [
        pl.when(pl.col(name).is_finite()).then(pl.col(name)).alias(name)
        for name, dtype in mapped.items()
        if dtype.is_float()
    ]


def _mapped(
    adapter: Adapter, source_id: str, plain: Path, origin: Path, index: int, line: bool
) -> pl.LazyFrame:
    spec = ColumnSpec(adapter.columns, adapter.optional_columns, adapter.wide_type)
    raw = READERS[adapter.format](plain, spec, origin, line=line)
    if adapter.reshape is not None:
        raw = adapter.reshape(raw, raw.collect_schema().names())
    names = raw.collect_schema().names()
    where = [LINE, pl.lit(index, pl.Int32).alias(_FILE)] if line else []
    return raw.select(*where, *adapter.map_rows(names, source_id, origin))


def prepare(
    adapter: Adapter,
    source_id: str,
    plain: Sequence[Path],
    origin: Sequence[Path],
    *,
    line: bool = False,
) -> pl.LazyFrame:
    """The mapped rows of one dataset's files with a drop-reason column (null = kept).

    `line=True` adds ``_line`` (1-based line in its file) and ``_file`` (index into `origin`)
    for error messages; the ingest itself does not need them.
    """
    frame = pl.concat(
        [
            _mapped(adapter, source_id, p, f, i, line)
            for i, (p, f) in enumerate(zip(plain, origin, strict=True))
        ],
        how="diagonal_relaxed",
    )
    mapped = frame.collect_schema()
    finite = _finite(mapped)
    if finite:
        frame = frame.with_columns(finite)
    reasons = dict(adapter.drop_when)
    for reason, predicate in guards(adapter.table, mapped).items():
        reasons.setdefault(reason, predicate)
    return frame.with_columns(_reason_expr(reasons).alias(_REASON))


def to_table(frame: pl.LazyFrame, adapter: Adapter) -> pl.LazyFrame:
    """Cast and order mapped rows to the adapter's table: canonical, or its own schema."""
    if adapter.table in SCHEMAS:
        return conform(frame, adapter.table)
    return frame.select(
        pl.col(name).cast(dtype).alias(name)
        for name, dtype in registry.table_schema(adapter.table).items()
    )


class _StrictStop(Exception):
    """Raised inside the streaming query to stop at the first dropped row in --strict mode."""


@dataclass
class Tally:
    """Rows by drop reason and the kept rows' clock range, counted as batches stream past.

    Called by polars on each batch of (drop reason, clock) inside the query that writes the
    file, so counting costs no extra read. Batches may come from several threads, so updates
    take a lock. With `order`, each batch also carries ``_row`` (its rows' positions in the
    input) and the tally keeps one summary per batch — first and last row, first and last
    kept time, in order inside or not — from which `in_order` tells, at the end, whether the
    kept times never decrease in file order, whatever order the batches came in.
    """

    clock: str | None  # the time column (Int64 ns, or minutes) whose kept range is tracked
    strict: bool = False  # raise _StrictStop on the first dropped row
    on_rows: Callable[[int], object] = lambda n: None  # progress: rows seen in this batch
    order: bool = False  # also check the kept clock's order (the frame needs ``_row``)
    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    lo: int | None = None  # earliest / latest kept clock value
    hi: int | None = None
    _runs: list[tuple[int, int, int, int, bool]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, batch: pl.Series) -> pl.Series:
        """Count one batch (a struct of the drop reason and the clock); returns the reasons."""
        frame = batch.struct.unnest()
        reason = frame.get_column(_REASON)
        n = frame.height
        bad = n - reason.null_count()
        if bad and self.strict:
            raise _StrictStop
        counts = reason.drop_nulls().value_counts().iter_rows() if bad else ()
        lo: int | None = None
        hi: int | None = None
        run = None
        if self.clock is not None:
            clock = frame.get_column(self.clock)
            rows = frame.get_column(_ROW) if self.order else None
            if bad:
                keep = reason.is_null()
                clock = clock.filter(keep)
                rows = None if rows is None else rows.filter(keep)
            first, last = clock.min(), clock.max()
            if first is not None and last is not None:  # None: no kept row with a clock value
                lo, hi = integer(first, self.clock), integer(last, self.clock)
                if rows is not None:
                    run = _run(rows, clock)
        with self._lock:
            self.rows_read += n
            for why, k in counts:
                self.dropped[why] = self.dropped.get(why, 0) + k
            if lo is not None and hi is not None:
                self.lo = lo if self.lo is None else min(self.lo, lo)
                self.hi = hi if self.hi is None else max(self.hi, hi)
            if run is not None:
                self._runs.append(run)
        self.on_rows(n)
        return reason

    @property
    def rows_kept(self) -> int:
        return self.rows_read - sum(self.dropped.values())

    @property
    def in_order(self) -> bool | None:
        """Whether the kept clock values never decrease in file order (None: not tracked)."""
        if not self.order:
            return None
        runs = sorted(self._runs)
        if not all(run[4] for run in runs):
            return False
        # consecutive batches: disjoint rows, and no kept time smaller than the one before
        return all(a[1] < b[0] and a[3] <= b[2] for a, b in itertools.pairwise(runs))

    def kept(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """`frame`'s kept rows; every row passes through this tally on the way."""
        # A struct with a column read from the file: a drop reason that polars can prove
        # constant in a batch would otherwise reach the tally as a single value.
        columns = [_REASON, self.clock, *([_ROW] if self.order else [])]
        inputs = pl.struct(*columns) if self.clock else pl.struct(pl.all())
        seen = inputs.map_batches(self, return_dtype=pl.String, is_elementwise=True)
        return frame.filter(seen.is_null())


def _run(rows: pl.Series, clock: pl.Series) -> tuple[int, int, int, int, bool]:
    """One batch's kept rows: (first row, last row, first time, last time, times in order)."""
    if not rows.is_sorted():  # a batch is a contiguous stretch of the input, but be sure
        by_row = rows.arg_sort()
        rows, clock = rows.gather(by_row), clock.gather(by_row)
    return (int(rows[0]), int(rows[-1]), int(clock[0]), int(clock[-1]), clock.is_sorted())


@dataclass
class Moves:
    """Counts the kept rows that the stable sort by time puts at another position.

    `sort(kept)` numbers the kept rows in file order (``_pos``), sorts them by ``_t_ns``
    (stable: ties keep the file's order), numbers them again (``_new``), and counts the rows
    where the two differ as batches stream past, like `Tally`.
    """

    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest()
        moved = int((frame.get_column(_POS) != frame.get_column(_NEW)).sum())
        with self._lock:
            self.count += moved
        return pl.repeat(True, frame.height, eager=True)

    def sort(self, kept: pl.LazyFrame) -> pl.LazyFrame:
        ordered = kept.with_row_index(_POS).sort(TIME_NS, maintain_order=True).with_row_index(_NEW)
        seen = pl.struct(_POS, _NEW).map_batches(self, return_dtype=pl.Boolean, is_elementwise=True)
        return ordered.filter(seen)


_budget_lock = threading.Lock()
_budget_users = 0


@contextlib.contextmanager
def sort_budget() -> Iterator[None]:
    """Cap the memory polars' streaming sort holds before spilling to disk at `SORT_MEMORY_MB`
    while the block runs (unless the user set a budget: theirs wins), then restore."""
    global _budget_users
    with _budget_lock:
        own = _budget_users > 0 or not any(os.environ.get(k) for k in _BUDGET_ENVS)
        if own:
            if _budget_users == 0:
                os.environ[_BUDGET_ENV] = str(SORT_MEMORY_MB)
                pl.Config.reload_env_vars()  # polars reads its env-only flags at import
            _budget_users += 1
    try:
        yield
    finally:
        if own:
            with _budget_lock:
                _budget_users -= 1
                if _budget_users == 0:
                    os.environ.pop(_BUDGET_ENV, None)
                    pl.Config.reload_env_vars()


def _t0_utc(adapter: Adapter, t0_ns: int | None) -> str | None:
    if not adapter.absolute_time or t0_ns is None:
        return None
    return f"{np.datetime64(int(t0_ns), 'ns')}Z"


def _strict_error(
    adapter: Adapter, source_id: str, plain: Sequence[Path], files: Sequence[Path]
) -> InputError:
    """The file and line of the first dropped row (a second scan, numbering the lines)."""
    bad = (
        prepare(adapter, source_id, plain, files, line=True)
        .filter(pl.col(_REASON).is_not_null())
        .select(_FILE, LINE, _REASON)
        .head(1)
        .collect(engine="streaming")
        .row(0, named=True)
    )
    return InputError(
        files[bad[_FILE]], f"row rejected (strict mode): {bad[_REASON]}", line=bad[LINE]
    )


def _t0_guess(frame: pl.LazyFrame) -> int:
    """The earliest kept ``_t_ns`` among the first rows (0 when none is kept there)."""
    head = frame.head(_T0_PROBE_ROWS).filter(pl.col(_REASON).is_null())
    found = head.select(pl.col(TIME_NS).min()).collect(engine="streaming").item()
    return 0 if found is None else int(found)


def _sink(
    frame: pl.LazyFrame, path: Path, metadata: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Stream `frame` into Parquet at `path` with polars' native (parallel) writer.

    `metadata()` is asked for the provenance when polars writes the footer, after the last
    batch, so the counts it reports are complete. Returns the document written.
    """
    written: dict[str, Any] = {}

    def footer(_ctx: object) -> dict[str, str]:
        written.clear()
        written.update(metadata())
        return {METADATA_KEY.decode(): json.dumps(written, sort_keys=True, default=str)}

    frame.sink_parquet(path, compression="zstd", compression_level=1, metadata=footer)
    return written


def convert(
    adapter: Adapter,
    source_id: str,
    files: Sequence[Path],
    dest: Path,
    *,
    strict: bool = False,
    extra_metadata: dict[str, Any] | None = None,
    show_progress: bool = False,
) -> IngestResult:
    """Convert `files` (one dataset) into the canonical Parquet `dest` (see module docstring).

    `show_progress` draws a rich bar of rows read.
    """
    started = time.perf_counter()
    files = [Path(f) for f in files]
    for f in files:
        if not f.is_file():
            raise InputError(f, "no such file")
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        hashing = pool.submit(_hash_all, files)
        if dest.exists():
            old = existing_metadata(dest)
            same = (
                old.get("input_sha256") == _combined_sha(hashing.result())
                and old.get("adapter_version") == adapter.version
                and old.get("ingest_version") == INGEST_VERSION
            )
            # --strict must still fail on a file whose earlier, lenient ingest dropped rows
            if same and not (strict and old.get("rows_dropped")):
                return _result_from_metadata(dest, old, skipped=True, started=started)

        bar = stack.enter_context(progress(disable=not show_progress, transient=True))
        task = bar.add_task(f"ingest {source_id}", total=None)
        plain = [stack.enter_context(decompressed(f, dest.parent)) for f in files]
        with _reading(adapter, plain, files):
            frame = prepare(adapter, source_id, plain, files)
            names = frame.collect_schema().names()
        has_time = TIME_NS in names
        # the span of a per-minute table comes from its minute column
        clock = TIME_NS if has_time else ("minute" if "minute" in names else None)
        ingested_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        src = registry.source_ids().get(source_id, (None, None))[1]

        def provenance(counts: Tally, t0_ns: int | None, moves: Moves | None) -> dict[str, Any]:
            hashes = hashing.result()
            in_order = counts.in_order if moves is None else False
            moved = None if in_order is None else (0 if moves is None else moves.count)
            span_s = None
            if t0_ns is not None and counts.hi is not None:  # t0_ns is set when has_time
                span_s = (counts.hi - t0_ns) / 1e9
            elif clock and counts.lo is not None and counts.hi is not None:
                # minutes covered, first to last inclusive
                span_s = 60.0 * (counts.hi - counts.lo + 1)
            return {
                "source": source_id,
                "table": adapter.table,
                "family": adapter.family,
                "adapter_version": adapter.version,
                "url": src.url if src else None,
                "homepage": adapter.homepage,
                "licence": adapter.licence,
                "citation": adapter.citation,
                "files": [
                    {"name": f.name, "sha256": h, "bytes": f.stat().st_size}
                    for f, h in zip(files, hashes, strict=True)
                ],
                "input_sha256": _combined_sha(hashes),
                "t0_utc": _t0_utc(adapter, t0_ns),
                "t0_source_s": None if adapter.absolute_time or t0_ns is None else t0_ns / 1e9,
                "span_s": span_s,
                "rows_read": counts.rows_read,
                "rows_kept": counts.rows_kept,
                "rows_dropped": dict(sorted(counts.dropped.items())),
                "input_time_sorted": in_order,
                "rows_moved": moved,
                "ingest_version": INGEST_VERSION,
                "ingested_at": ingested_at,
                "burstlab_version": __version__,
                **(extra_metadata or {}),
            }

        def write(t0_ns: int | None, moves: Moves | None = None) -> tuple[Tally, dict[str, Any]]:
            """One streaming read: tally and write the kept rows (sorted by time through
            `moves`, else in file order, checking that order); the counts and the footer."""
            bar.update(task, completed=0)
            track = has_time and moves is None
            counts = Tally(clock, strict, lambda n: bar.advance(task, n), order=track)
            kept = counts.kept(frame.with_row_index(_ROW) if track else frame)
            if t0_ns is not None:  # set exactly when the table has a time column (has_time)
                kept = kept.with_columns(arrival_seconds(t0_ns))
            if moves is not None:
                kept = moves.sort(kept)
            try:
                written = _sink(
                    to_table(kept, adapter), sink, lambda: provenance(counts, t0_ns, moves)
                )
            except _StrictStop:
                raise _strict_error(adapter, source_id, plain, files) from None
            if counts.rows_read == 0:
                only = {"csv": " (header only?)", "jsonl": " (blank lines only?)"}
                raise InputError(files[0], "no data rows" + only.get(adapter.format, ""))
            if counts.rows_kept == 0:
                raise InputError(
                    files[0],
                    "every row was dropped; nothing to write",
                    expected="valid rows",
                    found=counts.dropped,
                )
            return counts, written

        # The temporary name starts with "." so the catalog's *.parquet glob never sees it,
        # and is unique, so two ingests of one dataset at once never write into one file.
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        sink = dest.parent / f".{dest.name}.{token}.sink.tmp"
        moves = None
        try:
            with _reading(adapter, plain, files):
                t0_ns = _t0_guess(frame) if has_time else None
                counts, written = write(t0_ns)
                if has_time and counts.in_order is False:  # sort, with the true t0
                    t0_ns, moves = counts.lo, Moves()
                    with sort_budget():
                        counts, written = write(t0_ns, moves)
                elif has_time and counts.lo not in (None, t0_ns):  # no kept row among the first
                    t0_ns = counts.lo
                    counts, written = write(t0_ns)
                metadata = provenance(counts, t0_ns, moves)
                if written == metadata:
                    os.replace(sink, dest)  # atomic: readers see the old file or the new one
                else:  # the footer was written before the last batch: stamp it again (a copy)
                    finalize_atomic(sink, dest, metadata)
        finally:
            sink.unlink(missing_ok=True)
    return _result_from_metadata(dest, metadata, skipped=False, started=started)


@contextlib.contextmanager
def _reading(adapter: Adapter, plain: Sequence[Path], files: Sequence[Path]) -> Iterator[None]:
    """Turn polars' error for input it cannot read (a ComputeError: a CSV it cannot split into
    fields, a damaged Parquet file) into one InputError naming the file and, for a CSV, the
    line where the broken record starts; polars' own message can hold whole lines of the file.
    Other polars errors (a cast, a schema) are burstlab's bugs and are left alone."""
    try:
        yield
    except (pl.exceptions.ComputeError, pl.exceptions.PanicException) as exc:
        # polars' Parquet decoder can panic on a damaged file that pyarrow's check let
        # through; a panic anywhere else is a bug, not bad input
        if isinstance(exc, pl.exceptions.PanicException) and adapter.format != "parquet":
            raise
        if adapter.format == "csv":
            for raw, origin in zip(plain, files, strict=True):
                line = bad_csv_line(raw)
                if line is not None:
                    raise InputError(
                        origin,
                        "malformed CSV: a quoted field never closes, or a quote inside a "
                        'field is not doubled ("")',
                        line=line,
                    ) from None
        what = {"csv": "CSV", "jsonl": "JSON Lines", "parquet": "Parquet"}[adapter.format]
        where = files[0] if len(files) == 1 else files[0].parent
        raise InputError(where, f"not a readable {what} file ({_short(exc)})") from None


def _short(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, cut to `limit` characters."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= limit else first[: limit - 1] + "…"


def bad_csv_line(path: Path) -> int | None:
    """The line where the first record that strict CSV quoting rejects starts (None: none)."""
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, strict=True)
        start = 1
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error:
            return start
    return None


def _result_from_metadata(
    dest: Path, meta: dict[str, Any], *, skipped: bool, started: float
) -> IngestResult:
    return IngestResult(
        source=meta["source"],
        table_kind=meta["table"],
        path=dest,
        sha256=meta["input_sha256"],
        rows_read=meta["rows_read"],
        rows_kept=meta["rows_kept"],
        dropped=dict(meta["rows_dropped"]),
        skipped=skipped,
        t0_utc=meta.get("t0_utc"),
        span_s=meta.get("span_s"),
        seconds=time.perf_counter() - started,
        input_time_sorted=meta.get("input_time_sorted"),
        rows_moved=meta.get("rows_moved"),
    )


def existing_metadata(dest: Path) -> dict[str, Any]:
    """The provenance of a Parquet file already at `dest` ({} when it cannot be read: it is
    then simply replaced)."""
    try:
        return read_metadata(dest)
    except (OSError, ValueError, pa.ArrowException):
        return {}


def _pick(
    candidates: list[tuple[Adapter, SourceFile]], path: Path, origin: str
) -> tuple[Adapter, SourceFile] | None:
    """Which dataset a file is: by its name, else by its columns. None if nothing fits."""
    if len(candidates) == 1:
        return candidates[0]
    by_name = [c for c in candidates if c[1].matches(path.name)]
    if len(by_name) == 1:
        return by_name[0]
    pool = by_name or candidates
    fits = []
    for adapter, src in pool:
        header = peek_columns(path, adapter.format)
        if header is not None and all(col in header for col in adapter.columns):
            fits.append((adapter, src))
    if fits:  # the most specific layout wins: a cold-start table also has `day,time`
        most = max(len(a.columns) for a, _ in fits)
        fits = [(a, s) for a, s in fits if len(a.columns) == most]
    if len(fits) == 1:
        return fits[0]
    if len(fits) > 1:
        raise InputError(
            path,
            f"fits several {origin} datasets; name the dataset id instead of the family",
            expected=[src.id for _, src in fits],
        )
    return None


def resolve(
    source: str, files: Sequence[str | Path] | None, root: Path, workdir: Path
) -> list[tuple[Adapter, str, list[Path]]]:
    """Group input files by dataset id: [(adapter, id, files)].

    `source` is a dataset id (every file is that dataset) or a family (each file is matched
    to a dataset by its official name pattern, else by its columns). Archives are unpacked
    into `workdir` and their members matched the same way; members that fit no dataset are
    skipped. Without files, a dataset id reads what `burstlab fetch` downloaded.
    """
    candidates = registry.lookup(source)
    if not files:
        if len(candidates) != 1:
            raise UsageError(
                f"{source!r} is a family: name a dataset id or give files; dataset ids: "
                f"{[src.id for _, src in candidates]}",
                param="source",
            )
        src = candidates[0][1]
        path = downloads_dir(root) / src.filename
        if not path.exists():
            raise InputError(
                path, f"not downloaded; run `burstlab fetch {src.id}` or pass the file"
            )
        files = [path]
    groups: dict[str, tuple[Adapter, list[Path]]] = {}
    for given in map(Path, files):
        if not given.exists():
            raise InputError(given, "no such file")
        members = [given]
        if given.is_dir():  # e.g. Huawei's R1/ with one CSV per day
            members = sorted(
                p for p in given.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        elif is_archive(given):
            members = unpack(given, workdir / f"{len(groups)}-{given.name}")
        for path in members:
            picked = _pick(candidates, path, source)
            if picked is None and members == [given]:
                adapter, _ = candidates[0]
                raise InputError(
                    path,
                    f"does not look like any {source} dataset (names or columns)",
                    expected={src.id: list(a.columns) for a, src in candidates},
                    found=peek_columns(path, adapter.format),
                )
            if picked is not None:
                adapter, src = picked
                groups.setdefault(src.id, (adapter, []))[1].append(path)
    if not groups:
        raise InputError(Path(files[0]), f"no file in it fits a {source} dataset")
    return [(adapter, sid, paths) for sid, (adapter, paths) in groups.items()]


def ingest(
    source: str | None = None,
    files: Sequence[str | Path] | None = None,
    *,
    sample: bool = False,
    data_dir: str | Path | None = None,
    strict: bool = False,
    show_progress: bool = False,
) -> IngestResult:
    """Ingest one dataset into ``<data-dir>/parquet/<table>/<id>.parquet`` and the catalog.

    `source` is a dataset id (``"azure-llm-2023-conv"``) or a family (``"burstgpt"``) whose
    files name their dataset. `sample=True` ingests the real sample shipped in the package
    (offline). Unparsable rows are dropped and counted by reason; `strict=True` raises an
    InputError naming the file and line of the first one instead. `show_progress` draws a
    progress bar (the CLI turns it on). Use `ingest_many` for several datasets at once.
    """
    results = ingest_many(
        source, files, sample=sample, data_dir=data_dir, strict=strict, show_progress=show_progress
    )
    if len(results) != 1:
        raise UsageError(
            f"{source!r} with these files is {len(results)} datasets "
            f"({[r.source for r in results]}); use ingest_many()",
            param="files",
        )
    return results[0]


def ingest_many(
    source: str | None = None,
    files: Sequence[str | Path] | None = None,
    *,
    sample: bool = False,
    data_dir: str | Path | None = None,
    strict: bool = False,
    show_progress: bool = False,
) -> list[IngestResult]:
    """Like `ingest`, for any number of datasets; `sample=True` without a source ingests all
    shipped samples."""
    root = resolve_data_dir(data_dir)
    with tempfile.TemporaryDirectory(prefix=".unpack-", dir=downloads_dir(root)) as work:
        if sample:
            if files:
                raise UsageError("the shipped samples take no files", param="files")
            names = [source] if source else sorted(registry.samples())
            plan = []
            for name in names:
                found = registry.samples().get(name)
                if found is None:
                    raise UsageError(
                        f"no shipped sample for {name!r}; samples: {sorted(registry.samples())}",
                        param="source",
                    )
                plan.append((found[0], name, [registry.sample_path(name)]))
        elif source is None:
            raise UsageError(
                f"name a source family {sorted(registry.families())} or a dataset id, or ingest "
                "the shipped samples",
                param="source",
            )
        else:
            plan = resolve(source, files, root, Path(work))
        results = []
        for adapter, sid, paths in plan:
            dest = parquet_dir(root, adapter.table) / f"{sid}.parquet"
            extra = {"sample": sample}
            results.append(
                convert(
                    adapter,
                    sid,
                    paths,
                    dest,
                    strict=strict,
                    extra_metadata=extra,
                    show_progress=show_progress,
                )
            )
    catalog.refresh(root)
    return results
