"""`burstlab fit`, `burstiness`, `import-servegen`, `serverless`: the fitting stage's commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import polars as pl
import typer

from burstlab import traces
from burstlab.atomic import check_out
from burstlab.console import console, print_frame
from burstlab.errors import InputError
from burstlab.fitting.analytics import burstiness, windows_frame
from burstlab.fitting.servegen import import_servegen
from burstlab.fitting.serverless import (
    execution_times,
    fit_cold_starts,
    function_stats,
    functions_workload,
)
from burstlab.fitting.workload import fit
from burstlab.options import opt
from burstlab.params import parse_window
from burstlab.progress import progress

out = console()

SourceArg = Annotated[
    str,
    typer.Argument(
        help="An ingested dataset id (see `burstlab ls`), a shipped sample name "
        "(azure-llm-2023-conv …; used directly when not ingested) or a canonical .parquet file."
    ),
]
WhereOpt = Annotated[Optional[str], opt("where")]  # noqa: UP045 - typer reads it at runtime
ByOpt = Annotated[Optional[str], opt("by")]  # noqa: UP045
WindowOpt = Annotated[Optional[str], opt("window")]  # noqa: UP045


def _data_dir(ctx: typer.Context) -> Path | None:
    return (ctx.obj or {}).get("data_dir")


def fit_cmd(
    ctx: typer.Context,
    source: SourceArg,
    where: WhereOpt = None,
    by: ByOpt = None,
    window: WindowOpt = None,
    out_path: Annotated[
        Optional[Path],  # noqa: UP045
        opt("out", "the workload spec (JSON); without it the fit is only printed"),
    ] = None,
    overwrite: Annotated[bool, opt("overwrite")] = False,
    report: Annotated[Optional[Path], opt("report")] = None,  # noqa: UP045
    gof: Annotated[
        bool,
        typer.Option(
            "--gof", help="Add parametric-bootstrap GoF p-values to arrival fits (slower)."
        ),
    ] = False,
    seed: Annotated[int, opt("seed", "subsampling and bootstrap draws")] = 0,
) -> None:
    """Fit arrival and length models and write a workload spec (and an HTML report).

    Arrivals: exponential, gamma, Weibull and lognormal renewal fits (MLE and mean-preserving; interval-censored on whole-second or bucketed timestamps), then a rate curve and a burst regime. Lengths: families, an empirical model, the input/output copula and the coupling of output length to load.

    Example: burstlab fit azure-llm-2023-conv --out conv.json --report conv.html
    """
    for path in (out_path, report):
        if path is not None:
            check_out(path, overwrite=overwrite, param="out" if path is out_path else "report")
    lf = traces.scan(source, _data_dir(ctx))
    with progress(transient=True) as bar:
        task = bar.add_task(f"fitting {source}", total=None)
        result = fit(
            lf, source=source, where=where, by=by, window=parse_window(window), gof=gof, seed=seed
        )
        bar.update(task, completed=1, total=1)
    out.print(result.summary().renderable())
    if out_path is not None:
        result.spec.save(out_path)
        out.print(f"spec → {out_path}  (arrival model: {result.spec.arrivals.model})")
    else:
        out.print(f"arrival model: {result.spec.arrivals.model}; give --out to save the spec")
    if report is not None:
        result.report(report)
        out.print(f"report → {report}")


def burstiness_cmd(
    ctx: typer.Context,
    source: SourceArg,
    where: WhereOpt = None,
    by: ByOpt = None,
    window: WindowOpt = None,
    curve: Annotated[
        bool, typer.Option("--curve", help="Also print the full dispersion curve.")
    ] = False,
    per_window: Annotated[
        bool,
        typer.Option("--per-window", help="Also print 10-minute windows: rate, CV, best family."),
    ] = False,
) -> None:
    """Print burstiness analytics: IAT CV, index of dispersion at 0.1 s … 300 s, ACF, Hurst exponent, peak/mean and peak/trough of the rate — overall and per group.

    Poisson arrivals give 1 for the CV and for every dispersion index.

    Example: burstlab burstiness azure-llm-2023-code --curve
    """
    lf = traces.select(
        traces.scan(source, _data_dir(ctx)), where=where, window=parse_window(window)
    )
    report = burstiness(lf, by=by, fit_windows=per_window)
    print_frame(
        out, report.statistics(), f"{source}: burstiness (Poisson: iat_cv = idc = 1, hurst = 0.5)"
    )
    if curve:
        print_frame(out, report.dispersion(), "index of dispersion by window")
    if per_window:
        for g in report.groups:
            print_frame(out, windows_frame(g.windows), f"10-minute windows ({g.group})")


def import_servegen_cmd(
    paths: Annotated[
        list[Path],
        typer.Argument(help="ServeGen chunk-<i>-trace.csv files or folders holding them."),
    ],
    out_path: Annotated[Path, opt("out", "the workload spec (JSON)")],
    overwrite: Annotated[bool, opt("overwrite")] = False,
) -> None:
    """Import Alibaba ServeGen per-client window files as a workload spec (a group per client).

    Example: burstlab import-servegen traces/samples/servegen --out servegen.json
    """
    check_out(out_path, overwrite=overwrite)
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
    print_frame(out, pl.DataFrame(rows), "ServeGen clients")
    out.print(f"spec → {out_path}")


def serverless_cmd(
    ctx: typer.Context,
    source: SourceArg,
    where: WhereOpt = None,
    top: Annotated[int, typer.Option(help="Functions to show (busiest first).")] = 20,
    out_path: Annotated[
        Optional[Path],  # noqa: UP045
        opt("out", "invocations only: per-function specs (JSON, one group each)"),
    ] = None,
    overwrite: Annotated[bool, opt("overwrite")] = False,
) -> None:
    """Serverless statistics of an invocations, function_requests or cold_starts table.

    invocations: per-function totals, per-minute mean and CV, and timer detection. function_requests: execution-time quantiles. cold_starts: cold-start time and gaps between cold starts fitted and set beside the Huawei reference (lognormal 3.24 s / 7.10 s; Weibull 1.25 s / 3.66 s), and the components' shares.

    Example: burstlab serverless huawei-cold-starts
    """
    if out_path is not None:
        check_out(out_path, overwrite=overwrite)
    lf = traces.select(traces.scan(source, _data_dir(ctx)), where=where)
    cols = set(lf.collect_schema().names())
    if {"minute", "count"} <= cols:
        stats = function_stats(lf)
        print_frame(out, stats.head(top), f"{source}: functions ({stats.height:,}, busiest first)")
        out.print(f"timers (periodic): {int(stats['periodic'].sum()):,} of {stats.height:,}")
        if out_path is not None:
            spec = functions_workload(lf, top=top)
            spec.save(out_path)
            out.print(f"spec → {out_path}  ({len(spec.groups or [])} functions as groups)")
    elif "total_s" in cols:
        cold = fit_cold_starts(lf)
        print_frame(out, cold.comparison(), f"{source}: cold starts vs the Huawei reference")
        print_frame(out, cold.components, "cold-start components")
    elif "duration_s" in cols:
        print_frame(out, execution_times(lf).head(top), f"{source}: execution times")
    else:
        raise InputError(
            None,
            "not a serverless table",
            field=source,
            expected="invocations, function_requests or cold_starts columns",
            found=sorted(cols),
        )


def register(app: typer.Typer) -> None:
    """Add the fitting commands to the `burstlab` app."""
    app.command("fit")(fit_cmd)
    app.command("burstiness")(burstiness_cmd)
    app.command("import-servegen")(import_servegen_cmd)
    app.command("serverless")(serverless_cmd)
