"""`burstlab fit`, `burstlab burstiness`, `burstlab import-servegen`: the fitting stage's commands."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import polars as pl
import typer
from rich.table import Table

from burstlab.console import console
from burstlab.errors import InputError

out = console()
err = console(stderr=True)

SourceArg = Annotated[
    str,
    typer.Argument(
        help="An ingested dataset id (see `burstlab ls`), a shipped sample name "
        "(azure-llm-2023-conv …; used directly when not ingested) or a canonical .parquet file."
    ),
]
WhereOpt = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
    typer.Option("--where", help="SQL condition on the table first, e.g. \"model = 'GPT-4'\"."),
]
ByOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--by", help="Also analyse/fit each value of this column (model, kind …)."),
]


def load_source(source: str, data_dir: Path | None) -> pl.LazyFrame:
    """A canonical table by dataset id, shipped sample name, or Parquet path."""
    from burstlab.traces import scan

    return scan(source, data_dir)


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if v.is_integer() and abs(v) < 1e12:
            return f"{int(v):,}"
        return f"{v:,.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def print_table(df: pl.DataFrame, title: str) -> None:
    """A polars frame as a rich table, its title on a line of its own (rich would wrap a title
    wider than a narrow table)."""
    out.print(f"[bold]{title}[/]")
    table = Table(show_lines=False)
    for c in df.columns:
        table.add_column(c, overflow="fold")
    for row in df.iter_rows():
        table.add_row(*[_fmt(v) for v in row])
    out.print(table)


AUDIT_COLUMNS = ("family", "method", "n", "bic", "delta_bic", "ks", "ad", "mean_ratio", "chosen")


def audit(table: pl.DataFrame) -> pl.DataFrame:
    """The columns of a candidate table that fit a terminal."""
    return table.select([c for c in AUDIT_COLUMNS if c in table.columns])


def fit_cmd(
    ctx: typer.Context,
    source: SourceArg,
    where: WhereOpt = None,
    by: ByOpt = None,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the workload spec (JSON).")
    ] = Path("spec.json"),
    report: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--report", help="Also write an HTML report with charts here."),
    ] = None,
    gof: Annotated[
        bool,
        typer.Option(
            "--gof", help="Add parametric-bootstrap GoF p-values to arrival fits (slower)."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for subsampling and jitter.")] = 0,
) -> None:
    """Fit arrival and length models and write a workload spec (and an HTML report).

    Arrivals: exponential, gamma, Weibull and lognormal renewal fits (MLE and mean-preserving; interval-censored on whole-second or bucketed timestamps), then a rate curve and a burst regime. Lengths: families, an empirical model, the input/output copula and the coupling of output length to load.

    Example: burstlab fit azure-llm-2023-conv --out conv.json --report conv.html
    """
    from burstlab.fitting.workload import fit as fit_spec
    from burstlab.progress import progress

    lf = load_source(source, (ctx.obj or {}).get("data_dir"))
    with progress(transient=True) as bar:
        task = bar.add_task(f"fitting {source}", total=None)
        fit = fit_spec(lf, source=source, where=where, by=by, gof=gof, seed=seed)
        bar.update(task, completed=1, total=1)
    fit.spec.save(out_path)
    print_table(audit(fit.arrivals.table()), f"{source}: inter-arrival candidates")
    if fit.modulation is not None:
        print_table(
            fit.modulation.table().select("regime", "bic", "idc_rms_log_error", "chosen"),
            "burst regime candidates",
        )
    if fit.choice is not None:
        print_table(fit.choice.table, "arrival model candidates (gap KS + dispersion error)")
    if fit.lengths is not None:
        for part in (fit.lengths.input, fit.lengths.output):
            print_table(audit(part.table()), f"{part.column} candidates")
    for note in fit.spec.notes:
        out.print(f"[dim]• {note}[/]")
    out.print(f"spec → {out_path}  (arrival model: {fit.spec.arrivals.model})")
    if report is not None:
        from burstlab.fitting.report import write_report

        write_report(fit, report)
        out.print(f"report → {report}")


def burstiness_cmd(
    ctx: typer.Context,
    source: SourceArg,
    where: WhereOpt = None,
    by: ByOpt = None,
    curve: Annotated[
        bool, typer.Option("--curve", help="Also print the full dispersion curve.")
    ] = False,
    windows: Annotated[
        bool,
        typer.Option("--windows", help="Also print 10-minute windows: rate, CV, best family."),
    ] = False,
) -> None:
    """Print burstiness analytics: IAT CV, index of dispersion at 0.1 s … 300 s, ACF, Hurst exponent, peak/mean and peak/trough of the rate — overall and per group.

    Poisson arrivals give 1 for the CV and for every dispersion index.

    Example: burstlab burstiness azure-llm-2023-code --curve
    """
    from burstlab.fitting.analytics import burstiness, windows_frame
    from burstlab.fitting.workload import filter_frame

    lf = filter_frame(load_source(source, (ctx.obj or {}).get("data_dir")), where)
    report = burstiness(lf, by=by, fit_windows=windows)
    table = report.table()
    groups = [str(g) for g in table["group"]]
    stats = [c for c in table.columns if c != "group" and table[c].null_count() < table.height]
    wide = pl.DataFrame(
        {"statistic": stats, **{g: [table[c][i] for c in stats] for i, g in enumerate(groups)}},
        strict=False,
    )
    print_table(wide, f"{source}: burstiness (Poisson: iat_cv = idc = 1, hurst = 0.5)")
    if curve:
        print_table(report.dispersion(), "index of dispersion by window")
    if windows:
        for g in report.groups:
            print_table(windows_frame(g.windows), f"10-minute windows ({g.group})")


def import_servegen_cmd(
    paths: Annotated[
        list[Path],
        typer.Argument(help="ServeGen chunk-<i>-trace.csv files or folders holding them."),
    ],
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the workload spec (JSON).")
    ] = Path("servegen-spec.json"),
) -> None:
    """Import Alibaba ServeGen per-client window files as a workload spec (a group per client).

    Example: burstlab import-servegen traces/samples/servegen --out servegen.json
    """
    from burstlab.fitting.servegen import import_servegen

    spec = import_servegen(paths)
    spec.save(out_path)
    rows = [
        {
            "client": g.name,
            "weight": g.weight,
            "rate_per_s": g.spec.source.rate_per_s,
            "gap_family": g.spec.arrivals.renewal.family,
            "lengths": g.spec.lengths is not None,
        }
        for g in spec.groups or []
    ]
    print_table(pl.DataFrame(rows), "ServeGen clients")
    out.print(f"spec → {out_path}")


def serverless_cmd(
    ctx: typer.Context,
    source: SourceArg,
    where: WhereOpt = None,
    top: Annotated[int, typer.Option(help="Functions to show (busiest first).")] = 20,
    out_path: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--out", "-o", help="invocations only: write per-function specs (one group each)."
        ),
    ] = None,
) -> None:
    """Serverless statistics of an invocations, function_requests or cold_starts table.

    invocations: per-function totals, per-minute mean and CV, and timer detection. function_requests: execution-time quantiles. cold_starts: cold-start time and gaps between cold starts fitted and set beside the Huawei reference (lognormal 3.24 s / 7.10 s; Weibull 1.25 s / 3.66 s), and the components' shares.

    Example: burstlab serverless huawei-cold-starts
    """
    from burstlab.fitting import serverless as sv
    from burstlab.fitting.workload import filter_frame

    lf = filter_frame(load_source(source, (ctx.obj or {}).get("data_dir")), where)
    cols = set(lf.collect_schema().names())
    if {"minute", "count"} <= cols:
        stats = sv.function_stats(lf)
        print_table(stats.head(top), f"{source}: functions ({stats.height:,}, busiest first)")
        out.print(f"timers (periodic): {int(stats['periodic'].sum()):,} of {stats.height:,}")
        if out_path is not None:
            spec = sv.functions_workload(lf, top=top)
            spec.save(out_path)
            out.print(f"spec → {out_path}  ({len(spec.groups or [])} functions as groups)")
    elif "total_s" in cols:
        fit = sv.fit_cold_starts(lf)
        print_table(fit.comparison(), f"{source}: cold starts vs the Huawei reference")
        print_table(fit.components, "cold-start components")
    elif "duration_s" in cols:
        print_table(sv.execution_times(lf).head(top), f"{source}: execution times")
    else:
        raise InputError(
            None,
            f"{source} is not a serverless table",
            expected="invocations, function_requests or cold_starts columns",
            found=sorted(cols),
        )


def register(app: typer.Typer) -> None:
    """Add the fitting commands to the `burstlab` app."""
    app.command("fit")(fit_cmd)
    app.command("burstiness")(burstiness_cmd)
    app.command("import-servegen")(import_servegen_cmd)
    app.command("serverless")(serverless_cmd)
