"""The ingest engine: raw trace files → one canonical Parquet file per dataset, streaming.

One streaming read of the input does everything, so memory stays bounded whatever the size:
polars parses the file in parallel and its native Parquet sink writes the kept rows through
the canonical schema, while a per-batch tally in the same query counts rows by drop reason and
tracks the kept rows' earliest and latest time. ``arrival_s`` = (time − t0) seconds needs t0,
the earliest kept time, before the first row is written: it is taken from the first rows
(traces are in time order) and checked against the tally at the end; a file whose earliest
row comes later is written a second time with the true t0, so the result never depends on
the order. The sha256 of the input is computed in a thread beside the read (hashlib releases
the GIL). The provenance, counts included, goes into the Parquet footer as it is closed, and
the file is written under a hidden temporary name in the destination folder, then renamed
into place (atomic). Rows read always equal rows kept plus the sum of dropped rows, and the
metadata says so. Re-ingesting the same bytes (same sha256, same adapter version) writes
nothing. Row line numbers are computed only for a ``--strict`` error, by a second scan.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from burstlab import __version__
from burstlab.errors import InputError, UsageError
from burstlab.parquet import METADATA_KEY, finalize_atomic, read_metadata
from burstlab.paths import data_dir as resolve_data_dir
from burstlab.paths import downloads_dir, parquet_dir
from burstlab.progress import progress
from burstlab.results import Result, Summary
from burstlab.scalars import integer
from burstlab.schema import SCHEMAS, conform
from burstlab.traces import catalog, registry
from burstlab.traces.adapter import TIME_NS, Adapter, SourceFile, arrival_seconds
from burstlab.traces.archives import is_archive, unpack
from burstlab.traces.readers import LINE, READERS, ColumnSpec, decompressed, peek_columns

_REASON = "_drop_reason"
_FILE = "_file"
#: Rows at the head of the input whose earliest kept time is taken as t0 before writing.
_T0_PROBE_ROWS = 1 << 16


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


def _combined_sha(hashes: Sequence[str]) -> str:
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def _reason_expr(adapter: Adapter) -> pl.Expr:
    expr = None
    for reason, predicate in adapter.drop_when.items():
        expr = (pl.when(predicate) if expr is None else expr.when(predicate)).then(pl.lit(reason))
    return pl.lit(None, pl.String) if expr is None else expr.otherwise(pl.lit(None, pl.String))


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
    return pl.concat(
        [
            _mapped(adapter, source_id, p, f, i, line)
            for i, (p, f) in enumerate(zip(plain, origin, strict=True))
        ],
        how="diagonal_relaxed",
    ).with_columns(_reason_expr(adapter).alias(_REASON))


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
    take a lock.
    """

    clock: str | None  # the time column (Int64 ns, or minutes) whose kept range is tracked
    strict: bool = False  # raise _StrictStop on the first dropped row
    on_rows: Callable[[int], object] = lambda n: None  # progress: rows seen in this batch
    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    lo: int | None = None  # earliest / latest kept clock value
    hi: int | None = None
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
        if self.clock is not None:
            clock = frame.get_column(self.clock)
            if bad:
                clock = clock.filter(reason.is_null())
            first, last = clock.min(), clock.max()
            if first is not None and last is not None:  # None: no kept row with a clock value
                lo, hi = integer(first, self.clock), integer(last, self.clock)
        with self._lock:
            self.rows_read += n
            for why, k in counts:
                self.dropped[why] = self.dropped.get(why, 0) + k
            if lo is not None and hi is not None:
                self.lo = lo if self.lo is None else min(self.lo, lo)
                self.hi = hi if self.hi is None else max(self.hi, hi)
        self.on_rows(n)
        return reason

    @property
    def rows_kept(self) -> int:
        return self.rows_read - sum(self.dropped.values())

    def kept(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """`frame`'s kept rows; every row passes through this tally on the way."""
        # A struct with a column read from the file: a drop reason that polars can prove
        # constant in a batch would otherwise reach the tally as a single value.
        inputs = pl.struct(_REASON, self.clock) if self.clock else pl.struct(pl.all())
        seen = inputs.map_batches(self, return_dtype=pl.String, is_elementwise=True)
        return frame.filter(seen.is_null())


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
        hashing = pool.submit(lambda: [sha256_file(f) for f in files])
        if dest.exists():
            old = read_metadata(dest)
            same = (
                old.get("input_sha256") == _combined_sha(hashing.result())
                and old.get("adapter_version") == adapter.version
            )
            # --strict must still fail on a file whose earlier, lenient ingest dropped rows
            if same and not (strict and old.get("rows_dropped")):
                return _result_from_metadata(dest, old, skipped=True, started=started)

        bar = stack.enter_context(progress(disable=not show_progress, transient=True))
        task = bar.add_task(f"ingest {source_id}", total=None)
        plain = [stack.enter_context(decompressed(f, dest.parent)) for f in files]
        frame = prepare(adapter, source_id, plain, files)
        names = frame.collect_schema().names()
        has_time = TIME_NS in names
        # the span of a per-minute table comes from its minute column
        clock = TIME_NS if has_time else ("minute" if "minute" in names else None)
        ingested_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        src = registry.source_ids().get(source_id, (None, None))[1]

        def provenance(counts: Tally, t0_ns: int | None) -> dict[str, Any]:
            hashes = hashing.result()
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
                "ingested_at": ingested_at,
                "burstlab_version": __version__,
                **(extra_metadata or {}),
            }

        def write(t0_ns: int | None) -> tuple[Tally, dict[str, Any]]:
            """One streaming read: tally and write the kept rows; the counts and the footer."""
            bar.update(task, completed=0)
            counts = Tally(clock, strict, lambda n: bar.advance(task, n))
            kept = counts.kept(frame)
            if t0_ns is not None:  # set exactly when the table has a time column (has_time)
                kept = kept.with_columns(arrival_seconds(t0_ns))
            try:
                written = _sink(to_table(kept, adapter), sink, lambda: provenance(counts, t0_ns))
            except _StrictStop:
                raise _strict_error(adapter, source_id, plain, files) from None
            if counts.rows_read == 0:
                raise InputError(files[0], "no data rows (header only?)")
            if counts.rows_kept == 0:
                raise InputError(
                    files[0],
                    "every row was dropped; nothing to write",
                    expected="valid rows",
                    found=counts.dropped,
                )
            return counts, written

        # The temporary name starts with "." so the catalog's *.parquet glob never sees it.
        sink = dest.parent / f".{dest.name}.sink.tmp"
        try:
            t0_ns = _t0_guess(frame) if has_time else None
            counts, written = write(t0_ns)
            if has_time and counts.lo not in (None, t0_ns):  # an earlier row came later
                t0_ns = counts.lo
                counts, written = write(t0_ns)
            metadata = provenance(counts, t0_ns)
            if written == metadata:
                os.replace(sink, dest)  # atomic: readers see the old file or the new one
            else:  # the footer was written before the last batch: stamp it again (a copy)
                finalize_atomic(sink, dest, metadata)
        finally:
            sink.unlink(missing_ok=True)
    return _result_from_metadata(dest, metadata, skipped=False, started=started)


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
    )


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
