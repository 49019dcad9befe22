"""`burstlab ingest`, `ls`, `sql`, `sources`: the traces stage's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import duckdb
import typer
from rich.table import Table

from burstlab.console import console as make_console
from burstlab.errors import UsageError
from burstlab.paths import data_dir as resolve_data_dir
from burstlab.traces.catalog import connect, source_rows
from burstlab.traces.fetch import fetch
from burstlab.traces.generic import ingest_generic
from burstlab.traces.ingest import ingest_many
from burstlab.traces.registry import ADAPTERS

out = make_console()


def _root(ctx: typer.Context) -> Path:
    return resolve_data_dir((ctx.obj or {}).get("data_dir"))


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 600:
        return f"{seconds:,.1f} s"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:,.2f} h"
    return f"{seconds / 86400:,.2f} d"


def ingest_cmd(
    ctx: typer.Context,
    source: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Argument(
            help="Dataset id (azure-llm-2023-conv) or family (burstgpt); see `burstlab sources`."
        ),
    ] = None,
    files: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Argument(
            help="Local files; a family matches each file to a dataset by its official name."
        ),
    ] = None,
    sample: Annotated[
        bool,
        typer.Option("--sample", help="Ingest the real samples shipped in the package (offline)."),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Fail on the first unparsable row (file and line) instead of dropping it.",
        ),
    ] = False,
    mapping: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--map",
            help="generic only: canonical=source column pairs, e.g. arrival_s=ts,input_tokens=prompt.",
        ),
    ] = None,
    time_unit: Annotated[
        str, typer.Option(help="generic only: unit of the time column: s, ms, us, ns or datetime.")
    ] = "s",
    time_format: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="generic only: timestamp format for --time-unit datetime (chrono syntax)."
        ),
    ] = None,
    table: Annotated[
        str, typer.Option(help="generic only: canonical table the rows map onto.")
    ] = "requests",
    source_id: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--id", help="generic only: dataset id (default generic-<file stem>)."),
    ] = None,
) -> None:
    """Convert trace files into canonical Parquet and register them in the DuckDB catalog.

    Streams (bounded memory), writes atomically, and skips inputs whose sha256 is unchanged.
    Unparsable rows are dropped and counted by reason; the counts reconcile with rows read.

    Examples: `burstlab ingest --sample`; `burstlab ingest burstgpt BurstGPT_1.csv BurstGPT_3.csv`;
    `burstlab ingest azure-llm-2024-conv` (after `burstlab fetch azure-llm-2024-conv`);
    `burstlab ingest generic my.csv --map arrival_s=ts,input_tokens=p,output_tokens=c --time-unit ms`.
    """
    if source == "generic":
        results = [
            ingest_generic(
                files or [],
                mapping or [],
                time_unit=time_unit,
                time_format=time_format,
                table=table,
                source_id=source_id,
                data_dir=_root(ctx),
                strict=strict,
                show_progress=True,
            )
        ]
    else:
        results = ingest_many(
            source, files, sample=sample, data_dir=_root(ctx), strict=strict, show_progress=True
        )
    shown = Table(title="ingested")
    for col in ("source", "table", "rows read", "kept", "dropped", "span", "status"):
        shown.add_column(
            col, justify="right" if col in {"rows read", "kept", "dropped"} else "left"
        )
    for r in results:
        shown.add_row(
            r.source,
            r.table_kind,
            f"{r.rows_read:,}",
            f"{r.rows_kept:,}",
            f"{r.rows_dropped:,}",
            _span(r.span_s),
            "unchanged (skipped)" if r.skipped else f"written in {r.seconds:.2f} s",
        )
    out.print(shown)
    for r in results:
        for reason, n in sorted(r.dropped.items()):
            out.print(f"  {r.source}: dropped {n:,} rows: {reason}")
        if r.input_time_sorted is False:
            out.print(f"  {r.source}: rows were not in time order: sorted, {r.rows_moved:,} moved")


def ls_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List ingested datasets: table, rows, time span, rows dropped, and whether it is a sample."""
    rows = source_rows(_root(ctx))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print("nothing ingested yet; try `burstlab ingest --sample`")
        return
    table = Table(title=f"datasets in {_root(ctx)}")
    for col in ("source", "table", "rows", "dropped", "span", "t0 (UTC)", "sample"):
        table.add_column(col, justify="right" if col in {"rows", "dropped"} else "left")
    for r in rows:
        table.add_row(
            r["source"],
            r["table_name"],
            f"{r['rows']:,}",
            f"{r['rows_dropped']:,}",
            _span(r["span_s"]),
            r["t0_utc"] or "-",
            "yes" if r["sample"] else "",
        )
    out.print(table)


def sql_cmd(
    ctx: typer.Context,
    query: Annotated[
        str,
        typer.Argument(
            help="SQL over the views requests, invocations, function_requests, cold_starts and the table sources."
        ),
    ],
    max_rows: Annotated[int, typer.Option("--max-rows", help="Show at most this many rows.")] = 50,
    csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV (all rows) instead of a table.")
    ] = False,
) -> None:
    """Run a DuckDB query against the catalog, e.g. `burstlab sql "select source, count(*) from requests group by 1"`."""
    with connect(_root(ctx)) as con:
        try:
            frame = con.sql(query).pl()
        except duckdb.Error as exc:
            raise UsageError(str(exc).splitlines()[0], param="query") from None
    if csv:
        print(frame.write_csv(), end="")
        return
    table = Table(title=f"{frame.height:,} row(s)")
    for col in frame.columns:
        table.add_column(col)
    for row in frame.head(max_rows).iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


def sources_cmd() -> None:
    """List every known source family and dataset id, with its licence and whether a sample ships."""
    table = Table(title="known sources")
    for col in ("dataset id", "family", "table", "official file", "sample", "about"):
        table.add_column(col)
    for adapter in ADAPTERS:
        for src in adapter.sources:
            table.add_row(
                src.id,
                adapter.family,
                adapter.table,
                src.filename,
                "yes" if src.sample else "",
                src.note,
            )
    out.print(table)


def fetch_cmd(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="Dataset id, e.g. burstgpt-1; see `burstlab sources`.")
    ],
    mirror: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--mirror", help="Download from this URL instead of the official one."),
    ] = None,
    sha256: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Expected sha256 (overrides the known one)."),
    ] = None,
    then_ingest: Annotated[
        bool, typer.Option("--ingest", help="Ingest the file after downloading it.")
    ] = False,
) -> None:
    """Download a dataset's official file into <data-dir>/downloads (resumable, sha256-checked).

    Interrupted downloads resume where they stopped; a known checksum that does not match is an
    error and leaves no file. Example: `burstlab fetch burstgpt-1 --ingest`.
    """
    done = fetch(source, _root(ctx), mirror=mirror, sha256=sha256)
    state = "verified" if done.verified else "no published sha256 to check"
    if done.bytes_downloaded == 0 and not done.resumed_from:
        out.print(f"{done.path} already complete ({state})")
    else:
        resumed = f", resumed at byte {done.resumed_from:,}" if done.resumed_from else ""
        out.print(
            f"{done.path}: {done.bytes_total:,} bytes{resumed}; sha256 {done.sha256} ({state})"
        )
    if then_ingest:
        ingest_cmd(ctx, source=done.source, files=None)
    else:
        out.print(f"next: burstlab ingest {done.source}")


def register(app: typer.Typer) -> None:
    """Add the traces stage's commands to the `burstlab` app."""
    app.command("ingest")(ingest_cmd)
    app.command("ls")(ls_cmd)
    app.command("sql")(sql_cmd)
    app.command("sources")(sources_cmd)
    app.command("fetch")(fetch_cmd)
