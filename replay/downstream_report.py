"""The HTML report of a `DownstreamFidelity` run: per metric, every real window, synthetic seed
and baseline seed as a strip plot on one axis, with the real envelope (dark) and the accepted
range of the median (light) shaded behind them, under the verdict and per-run tables."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import altair as alt
import polars as pl

from burstlab.charts import write_html_report

if TYPE_CHECKING:
    from burstlab.replay.downstream import DownstreamFidelity

#: Width of one strip plot (pixels).
WIDTH = 560


def strip_charts(
    result: DownstreamFidelity, metrics: Mapping[str, str], real_sides: Sequence[str]
) -> alt.VConcatChart:
    """One strip plot per judged metric (`metrics`: column → meaning with units), stacked; the
    `real_sides` first, then every generated side."""
    sides = [*real_sides, *result.verdicts["side"].unique(maintain_order=True)]
    charts = []
    for metric, meaning in metrics.items():
        points = result.runs.select("side", "index", "seed", pl.col(metric).alias("value")).filter(
            pl.col("value").is_not_null() & pl.col("value").is_not_nan()
        )
        if points.is_empty():
            continue
        env = result.verdicts.filter(pl.col("metric") == metric).head(1)
        meds = result.verdicts.filter(pl.col("metric") == metric).select(
            "side", pl.col("median").alias("value"), "faithful"
        )
        x = alt.X("value:Q", title=f"{metric}: {meaning}", scale=alt.Scale(zero=False))
        y = alt.Y("side:N", sort=sides, title=None)
        layers: list[alt.Chart] = []
        if env.height and env["real_low"][0] is not None:
            layers += [
                alt.Chart(env)
                .mark_rect(color="#9ecae1", opacity=0.35)
                .encode(x="accept_low:Q", x2="accept_high:Q"),
                alt.Chart(env)
                .mark_rect(color="#3182bd", opacity=0.35)
                .encode(x="real_low:Q", x2="real_high:Q"),
            ]
        layers.append(
            alt.Chart(points)
            .mark_circle(size=60, opacity=0.8)
            .encode(
                x=x,
                y=y,
                color=alt.Color("side:N", sort=sides, legend=None),
                tooltip=["side", "index", "seed", "value"],
            )
        )
        if meds.height:
            layers.append(
                alt.Chart(meds)
                .mark_tick(color="black", thickness=2, size=18)
                .encode(
                    x="value:Q",
                    y=alt.Y("side:N", sort=sides),
                    tooltip=["side", "value", "faithful"],
                )
            )
        charts.append(alt.layer(*layers).properties(width=WIDTH, title=metric))
    return alt.vconcat(*charts)


def write_report(
    result: DownstreamFidelity,
    dest: str | Path,
    *,
    metrics: Mapping[str, str],
    real_sides: Sequence[str],
    rule: str,
) -> Path:
    """Write the report of `result` to `dest` atomically (the verdict `rule` in words, one strip
    plot per metric of `metrics`); returns `dest`."""
    intro = (
        f"<p>Time compression ×{result.speedup:.4g}"
        + (
            f", chosen for {result.utilisation_target:.0%} utilisation of the engine's measured "
            f"saturation throughput {result.capacity_rps:.4g} req/s (achieved by the real windows: "
            f"{result.utilisation:.0%})"
            if result.capacity_rps is not None and result.utilisation is not None
            else " (given)"
        )
        + f". Windows of {result.window_s:g} s; training part {result.train[0]:g}–"
        f"{result.train[1]:g} s, held-out part {result.heldout[0]:g}–{result.heldout[1]:g} s; "
        f"seeds {list(result.seeds)}.</p>"
        f"<p>Rule: {html.escape(rule)} (slack {result.slack:g}, spread factor "
        f"{result.spread_factor:g}). Dark band: the real envelope; light band: the accepted "
        "range of the median; black tick: each generated side's median.</p>"
    )
    return write_html_report(
        dest,
        title="Downstream fidelity over many seeds",
        intro=intro,
        tables=[
            ("Median per side (real envelope first)", result.wide("median")),
            ("Faithful per side", result.wide("faithful")),
            ("Verdicts", result.verdicts),
            ("Runs, in the order run", result.runs.drop("run_dir")),
        ],
        chart=strip_charts(result, metrics, real_sides),
    )
