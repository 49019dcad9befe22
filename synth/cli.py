"""`burstlab synth`, `validate` and `fidelity`: the synth stage's commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import polars as pl
import typer
from rich.table import Table

from burstlab import fitting, traces
from burstlab.atomic import check_out, write_json
from burstlab.console import console
from burstlab.errors import UsageError
from burstlab.options import opt
from burstlab.params import non_negative, parse_pairs
from burstlab.scalars import number
from burstlab.spec import WorkloadSpec
from burstlab.synth import suite as F
from burstlab.synth.baselines import all_baselines
from burstlab.synth.export import export
from burstlab.synth.generate import generate, with_arrival_model
from burstlab.synth.holdout import validate
from burstlab.synth.report import write_report

out = console()

SpecArg = Annotated[Path, typer.Argument(metavar="SPEC", help="Workload spec JSON file.")]
ArrivalModel = Annotated[Optional[str], opt("arrival-model")]  # noqa: UP045 - read at runtime
Overwrite = Annotated[bool, opt("overwrite")]
Report = Annotated[Optional[Path], opt("report")]  # noqa: UP045


def _data_dir(ctx: typer.Context) -> Path | None:
    return (ctx.obj or {}).get("data_dir")


def _verdict_table(result: F.FidelityResult, title: str) -> Table:
    names = list(result.comparisons)
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("real envelope", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    wide = result.wide()
    within = result.wide("within") if result.envelope is not None else None
    for i, metric in enumerate(wide["metric"]):
        lo, hi = wide["env_low"][i], wide["env_high"][i]
        cells = [metric, f"{lo:.3f} – {hi:.3f}" if lo is not None else "-"]
        for n in names:
            v = wide[n][i]
            ok = None if within is None else within[n][i]
            if ok is None:
                cells.append(f"{v:.3f}")
            else:  # a mark as well as a colour, so the verdict survives a pipe or a log
                cells.append(f"[green]{v:.3f} ✓[/]" if ok else f"[red]{v:.3f} ✗[/]")
        table.add_row(*cells)
    return table


def fidelity_cmd(
    ctx: typer.Context,
    real: Annotated[
        str, typer.Argument(help="Held-out real requests: a Parquet file or a dataset id.")
    ],
    synth: Annotated[str, typer.Argument(help="Synthetic requests: a Parquet file.")],
    train: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Option(
            help="Training-period requests (Parquet or dataset id): enables the real envelope "
            "and the peer baselines (Poisson, Gamma renewal, BurstGPT demo)."
        ),
    ] = None,
    duration: Annotated[
        Optional[float],  # noqa: UP045
        opt("duration", "of the held-out window compared (default: its last arrival)"),
    ] = None,
    resolution: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            help="Timestamp grid of the real trace, seconds (1 for BurstGPT, 3 for Mooncake); "
            "every frame is snapped to it. Default: detected from the held-out rows."
        ),
    ] = None,
    seed: Annotated[int, opt("seed", "of the baseline generators")] = 0,
    report: Report = None,
    out_path: Annotated[
        Optional[Path],  # noqa: UP045
        opt("out", "the verdict table as JSON"),
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Compare a synthetic workload with held-out real requests (the docs/design.md §4 suite).

    Example: burstlab fidelity heldout.parquet synth.parquet --train train.parquet
    --report fidelity.html
    """
    for path, param in ((out_path, "out"), (report, "report")):
        if path is not None:
            check_out(path, overwrite=overwrite, param=param)
    held = traces.scan(real, _data_dir(ctx)).collect()
    held = held.with_columns(pl.col("arrival_s") - pl.col("arrival_s").min())
    cand = traces.scan(synth, _data_dir(ctx)).collect()
    span = duration or number(held["arrival_s"].max(), "arrival_s")
    if resolution is None:
        resolution = fitting.detect_resolution(held["arrival_s"].to_numpy()).resolution_s
    frames = {"synthetic": cand}
    train_frame = None
    if train is not None:
        train_frame = traces.scan(train, _data_dir(ctx)).collect()
        frames.update(all_baselines(train_frame, span, seed))
    result = F.fidelity(held, frames, train=train_frame, window_s=span, resolution_s=resolution)
    out.print(_verdict_table(result, f"fidelity vs {real} ({held.height} requests, {span:.0f} s)"))
    if out_path is not None:
        write_json(
            out_path,
            {"window_s": span, "resolution_s": resolution, "rows": result.verdicts.to_dicts()},
        )
        out.print(f"verdicts: {out_path}")
    if report is not None:
        path = write_report(result, {F.REAL: held, **frames}, report)
        out.print(f"report: {path}")


def synth_cmd(
    spec_path: SpecArg,
    out_path: Annotated[Path, opt("out", "the workload (format from --format or the suffix)")],
    duration: Annotated[float, opt("duration", "to generate")] = 600.0,
    seed: Annotated[int, opt("seed")] = 0,
    rate_scale: Annotated[float, opt("rate-scale")] = 1.0,
    speedup: Annotated[
        float, opt("speedup", "the spec's duration × X seconds of workload is played in --duration")
    ] = 1.0,
    overwrite: Overwrite = False,
    fmt: Annotated[Optional[str], opt("format")] = None,  # noqa: UP045
    sessions: Annotated[
        bool, opt("sessions", "generate conversations with prefix hash_ids")
    ] = False,
    failures: Annotated[
        bool, typer.Option("--failures", help="Mark the source's share of requests failed.")
    ] = False,
    mix: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--mix",
            help="New share of a spec group, NAME=WEIGHT (repeat or comma-separate; e.g. "
            "--mix GPT-4=3,ChatGPT=1). Groups left out are not generated.",
        ),
    ] = None,
    arrival_model: ArrivalModel = None,
) -> None:
    """Generate a synthetic workload from a fitted spec.

    Example: burstlab synth spec.json --duration 600 --seed 1 --rate-scale 2 --out load.jsonl

    Example: burstlab synth spec.json --arrival-model renewal --out renewal.parquet
    """
    check_out(out_path, overwrite=overwrite)
    spec = WorkloadSpec.load(spec_path)
    if arrival_model is not None:
        spec = with_arrival_model(spec, arrival_model)
    w = generate(
        spec,
        duration_s=duration,
        seed=seed,
        rate_scale=rate_scale,
        speedup=speedup,
        group_mix=parse_pairs(mix, param="mix", value=non_negative, expected="NAME=WEIGHT") or None,
        sessions=sessions,
        failures=failures,
    )
    path = export(w.frame, out_path, fmt, metadata=w.metadata())  # type: ignore[arg-type]
    out.print(
        f"{w.frame.height:,} requests over {duration:,.0f} s "
        f"({w.frame.height / duration:,.2f} req/s, expected "
        f"{w.diagnostics.get('expected_requests', float('nan')):,.0f}) → {path}"
    )


def validate_cmd(
    ctx: typer.Context,
    spec_path: SpecArg,
    holdout: Annotated[float, opt("holdout")] = 1200.0,
    arrival_model: ArrivalModel = None,
    report: Report = None,
    out_path: Annotated[
        Optional[Path],  # noqa: UP045
        opt("out", "the per-seed verdicts as JSON"),
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Judge a spec's model on data it has not seen: refit its source without the last --holdout
    seconds, generate that long for 5 seeds, and compare with the held-out real rows.

    The spec's own fit (same --where/--by) is repeated on the training part; the peer baselines
    run through the same suite, and the real envelope comes from training windows.

    Example: burstlab validate conv.json --holdout 1200 --report validate.html
    """
    for path, param in ((out_path, "out"), (report, "report")):
        if path is not None:
            check_out(path, overwrite=overwrite, param=param)
    spec = WorkloadSpec.load(spec_path)
    src = spec.source
    frame = traces.select(traces.scan(src.source, _data_dir(ctx)), where=src.where).collect()
    frame = frame.sort("arrival_s").with_columns(pl.col("arrival_s") - pl.col("arrival_s").min())
    span = float(frame["arrival_s"].max())
    if span <= 2 * holdout:
        raise UsageError(
            f"source {src.source} spans {span:.0f} s; hold out less than half of it, found "
            f"{holdout:g} s",
            param="holdout",
        )
    train_s = span - holdout

    def refit(train: pl.DataFrame) -> WorkloadSpec:
        fitted = fitting.fit(train, source=src.source, by=src.by).spec
        return fitted if arrival_model is None else with_arrival_model(fitted, arrival_model)

    h = validate(frame, refit, train_s=train_s, heldout_s=holdout)
    title = f"fit on {train_s:.0f} s, held out {holdout:.0f} s (seed {h.seeds[0]})"
    out.print(_verdict_table(h.runs[0], title))
    out.print(h.summary().title)
    if out_path is not None:
        write_json(out_path, h.to_dict())
        out.print(f"verdicts: {out_path}")
    if report is not None:
        seeds = [
            (f"Median over seeds {list(h.seeds)}", h.wide("value_median")),
            ("Share of seeds inside the envelope", h.wide("within_share")),
        ]
        path = write_report(h.runs[0], h.frames, report, title=title, extra_tables=seeds)
        out.print(f"report: {path}")


def register(app: typer.Typer) -> None:
    """Add `synth`, `validate` and `fidelity` to the burstlab CLI."""
    app.command("synth")(synth_cmd)
    app.command("validate")(validate_cmd)
    app.command("fidelity")(fidelity_cmd)
