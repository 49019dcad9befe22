"""`burstlab synth` and `burstlab fidelity`: the synth stage's commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import polars as pl
import typer
from rich.table import Table

from burstlab.console import console
from burstlab.errors import InputError
from burstlab.synth import suite as F

out = console()


def load_requests(arg: str, data_dir: Path | None) -> pl.DataFrame:
    """A requests frame from a Parquet file path, an ingested dataset id or a shipped sample."""
    from burstlab.traces import scan

    return scan(arg, data_dir).collect()


def parse_mix(items: list[str]) -> dict[str, float]:
    """`NAME=WEIGHT` strings → {name: weight}; InputError names the bad item."""
    mix = {}
    for item in items:
        name, sep, weight = item.rpartition("=")
        try:
            value = float(weight)
        except ValueError:
            value = -1.0
        if not sep or not name or value < 0:
            raise InputError(
                None, "bad --mix item", expected="NAME=WEIGHT (weight ≥ 0)", found=item
            )
        mix[name] = value
    return mix


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
    window_s: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(help="Held-out window length in seconds (default: its last arrival)."),
    ] = None,
    resolution_s: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            help="Timestamp grid of the real trace (1 for BurstGPT, 3 for Mooncake); every "
            "frame is snapped to it. Default: detected from the held-out rows."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the baseline generators.")] = 0,
    report: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Write an HTML report with charts here."),
    ] = None,
) -> None:
    """Compare a synthetic workload with held-out real requests (DESIGN.md §4 suite).

    Example: burstlab fidelity heldout.parquet synth.parquet --train train.parquet
    --report fidelity.html
    """
    from burstlab.synth.baselines import all_baselines

    data_dir = (ctx.obj or {}).get("data_dir")
    held = load_requests(real, data_dir)
    held = held.with_columns(pl.col("arrival_s") - pl.col("arrival_s").min())
    cand = load_requests(synth, data_dir)
    span = window_s or float(held["arrival_s"].max())
    if resolution_s is None:
        from burstlab.fitting.arrivals import detect_resolution

        resolution_s = detect_resolution(held["arrival_s"].to_numpy()).resolution_s
    frames = {"synthetic": cand}
    train_frame = None
    if train is not None:
        train_frame = load_requests(train, data_dir)
        frames.update(all_baselines(train_frame, span, seed))
    result = F.fidelity(held, frames, train=train_frame, window_s=span, resolution_s=resolution_s)
    out.print(_verdict_table(result, f"fidelity vs {real} ({held.height} requests, {span:.0f} s)"))
    if report is not None:
        from burstlab.synth.report import write_report

        path = write_report(result, {F.REAL: held, **frames}, report)
        out.print(f"report: {path}")


def synth_cmd(
    ctx: typer.Context,
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Workload spec JSON file.")],
    duration: Annotated[float, typer.Option(help="Seconds of workload to generate.")] = 600.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed → identical output).")] = 0,
    rate_scale: Annotated[
        float,
        typer.Option(help="Multiply the load, keeping the burst structure (not a time squeeze)."),
    ] = 1.0,
    time_scale: Annotated[
        float, typer.Option(help="Compress time: play duration × this in `duration` seconds.")
    ] = 1.0,
    out_path: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Output file (format from --format or the suffix)."),
    ] = None,
    fmt: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--format", help="parquet | mooncake (JSONL) | burstgpt (CSV)."),
    ] = None,
    sessions: Annotated[
        bool, typer.Option("--sessions", help="Multi-turn sessions with prefix hash_ids.")
    ] = False,
    failures: Annotated[
        bool, typer.Option("--failures", help="Mark the source's share of requests failed.")
    ] = False,
    mix: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--mix",
            help="New share of a spec group, NAME=WEIGHT (repeat; e.g. --mix GPT-4=3 "
            "--mix ChatGPT=1). Groups left out are not generated.",
        ),
    ] = None,
    model: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--model",
            help="Arrival model instead of the spec's choice: renewal (i.i.d. fitted gaps), "
            "modulated (rate curve × burst regime) or windowed (per-window fits).",
        ),
    ] = None,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Hold out the end of the spec's source trace, refit on the rest, generate, "
            "and report fidelity against the held-out part.",
        ),
    ] = False,
    holdout_s: Annotated[
        float, typer.Option(help="--validate: seconds held out at the end of the trace.")
    ] = 1200.0,
    report: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="--validate: write the HTML fidelity report here."),
    ] = None,
) -> None:
    """Generate a synthetic workload from a fitted spec.

    Example: burstlab synth spec.json --duration 600 --seed 1 --rate-scale 2 --out load.jsonl

    Example: burstlab synth spec.json --model renewal --out renewal.parquet
    """
    from burstlab.spec import WorkloadSpec
    from burstlab.synth.export import export
    from burstlab.synth.generate import generate, with_arrival_model

    spec = WorkloadSpec.load(spec_path)
    if model is not None:
        spec = with_arrival_model(spec, model)
    if validate:
        _validate(ctx, spec, holdout_s, report, model)
    if out_path is None:
        if validate:
            return
        raise InputError(None, "nothing to do: give --out FILE (and/or --validate)")
    w = generate(
        spec,
        duration_s=duration,
        seed=seed,
        rate_scale=rate_scale,
        time_scale=time_scale,
        group_mix=parse_mix(mix) if mix else None,
        sessions=sessions,
        failures=failures,
    )
    path = export(w.frame, out_path, fmt, metadata=w.metadata())  # type: ignore[arg-type]
    out.print(
        f"{w.frame.height:,} requests over {duration:,.0f} s "
        f"({w.frame.height / duration:,.2f} req/s, expected "
        f"{w.diagnostics.get('expected_requests', float('nan')):,.0f}) → {path}"
    )


def _validate(
    ctx: typer.Context, spec, holdout_s: float, report: Path | None, model: str | None
) -> None:
    """Refit the spec's source (same `where`/`by`) without its last `holdout_s` seconds,
    generate that long per seed (with `model` as the arrival model when given), and judge
    against the held-out real rows."""
    from burstlab import fitting
    from burstlab.fitting.workload import filter_frame
    from burstlab.synth.generate import with_arrival_model
    from burstlab.synth.holdout import validate

    data_dir = (ctx.obj or {}).get("data_dir")
    src = spec.source
    frame = filter_frame(load_requests(src.source, data_dir), src.where).collect()
    frame = frame.sort("arrival_s").with_columns(pl.col("arrival_s") - pl.col("arrival_s").min())
    span = float(frame["arrival_s"].max())
    if span <= 2 * holdout_s:
        raise InputError(
            None,
            f"source {src.source} spans {span:.0f} s; --holdout-s must be under half of it",
            found=holdout_s,
        )
    train_s = span - holdout_s

    def fit(train: pl.DataFrame):
        refit = fitting.fit(train, source=src.source, by=src.by).spec
        return refit if model is None else with_arrival_model(refit, model)

    h = validate(frame, fit, train_s=train_s, heldout_s=holdout_s)
    title = f"--validate: fit on {train_s:.0f} s, held out {holdout_s:.0f} s (seed {h.seeds[0]})"
    out.print(_verdict_table(h.runs[0], title))
    shares = h.verdicts()
    inside = sum(v >= 0.5 for v in shares.values())
    out.print(
        f"burstlab inside the real envelope on {inside}/{len(shares)} metrics "
        f"(in at least half of {len(h.seeds)} seeds)"
    )
    if report is not None:
        from burstlab.synth.report import write_report

        seeds = [
            (f"Median over seeds {list(h.seeds)}", h.wide("value_median")),
            ("Share of seeds inside the envelope", h.wide("within_share")),
        ]
        path = write_report(h.runs[0], h.frames, report, title=title, extra_tables=seeds)
        out.print(f"report: {path}")


def register(app: typer.Typer) -> None:
    """Add `synth` and `fidelity` to the burstlab CLI."""
    app.command("synth")(synth_cmd)
    app.command("fidelity")(fidelity_cmd)
