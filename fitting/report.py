"""HTML report of a workload fit: the model-selection tables and altair charts.

Charts (all computed into small tables first, so the HTML stays light): inter-arrival
histogram with every family's fitted density on log axes; QQ plots of the candidates; the
dispersion curve with what the renewal and modulated models imply; the rate over time;
input and output length CDFs with the chosen family and the empirical model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import altair as alt
import numpy as np
import polars as pl

from burstlab.charts import write_html_report
from burstlab.spec import FamilyFit
from burstlab.stats import window_counts

if TYPE_CHECKING:
    from burstlab.fitting.workload import WorkloadFit

QQ_POINTS = 200
WIDTH = 520


def _family_label(c: FamilyFit) -> str:
    return f"{c.family} ({c.method})"


def iat_density_chart(gaps: np.ndarray, candidates: list[FamilyFit]) -> alt.Chart:
    """Histogram of log10(gap) as density per decade, with each family's density overlaid."""
    pos = gaps[gaps > 0]
    logs = np.log10(pos)
    edges = np.linspace(logs.min(), logs.max(), 61)
    counts, _ = np.histogram(logs, edges)
    width = edges[1] - edges[0]
    hist = pl.DataFrame(
        {
            "log10_gap_s": (edges[:-1] + edges[1:]) / 2,
            "density": counts / (pos.size * width),
        }
    )
    grid = np.logspace(edges[0], edges[-1], 200)
    lines = pl.concat(
        [
            pl.DataFrame(
                {
                    "log10_gap_s": np.log10(grid),
                    "density": c.pdf(grid) * grid * math.log(10),
                    "model": _family_label(c),
                }
            )
            for c in candidates
        ]
    )
    bars = (
        alt.Chart(hist)
        .mark_bar(opacity=0.4, color="gray")
        .encode(
            x=alt.X("log10_gap_s:Q", title="log10 inter-arrival time (s)"),
            y=alt.Y("density:Q", title="density per decade"),
        )
    )
    curves = alt.Chart(lines).mark_line().encode(x="log10_gap_s:Q", y="density:Q", color="model:N")
    return (bars + curves).properties(
        width=WIDTH, height=260, title="Inter-arrival times and fitted densities (log axis)"
    )


def qq_chart(values: np.ndarray, candidates: list[FamilyFit], title: str) -> alt.Chart:
    """Empirical vs fitted quantiles (log-log) at QQ_POINTS probabilities; y = x is perfect."""
    x = np.sort(values[values > 0])
    p = (np.arange(QQ_POINTS) + 0.5) / QQ_POINTS
    emp = np.quantile(x, p)
    rows = [
        pl.DataFrame({"fitted": c.ppf(p), "empirical": emp, "model": _family_label(c)})
        for c in candidates
    ]
    data = pl.concat(rows).filter(pl.col("fitted") > 0)
    lo, hi = float(emp[emp > 0].min()), float(emp.max())
    diag = pl.DataFrame({"fitted": [lo, hi], "empirical": [lo, hi]})
    log = alt.Scale(type="log")
    pts = (
        alt.Chart(data)
        .mark_point(size=12)
        .encode(
            x=alt.X("fitted:Q", scale=log, title="fitted quantile"),
            y=alt.Y("empirical:Q", scale=log, title="empirical quantile"),
            color="model:N",
        )
    )
    line = (
        alt.Chart(diag)
        .mark_line(color="black", strokeDash=[4, 4])
        .encode(x="fitted:Q", y="empirical:Q")
    )
    return (line + pts).properties(width=WIDTH, height=260, title=title)


def dispersion_chart(fit: WorkloadFit) -> alt.Chart:
    """Empirical IDC curve; the renewal limit CV²; the modulated models' implied IDC."""
    emp = fit.burstiness.dispersion.select("window_s", "idc").with_columns(
        pl.lit("trace").alias("series")
    )
    parts = [emp]
    cv2 = fit.arrivals.cv**2
    parts.append(
        pl.DataFrame(
            {
                "window_s": emp["window_s"],
                "idc": np.full(emp.height, cv2),
                "series": "renewal limit (CV²)",
            }
        )
    )
    if fit.modulation is not None:
        for c in fit.modulation.candidates:
            parts.append(
                pl.DataFrame(
                    {
                        "window_s": fit.modulation.scales,
                        "idc": c.implied_idc,
                        "series": f"implied: {c.label}",
                    }
                )
            )
    data = pl.concat(parts)
    log = alt.Scale(type="log")
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("window_s:Q", scale=log, title="window (s)"),
            y=alt.Y("idc:Q", scale=log, title="index of dispersion (var/mean)"),
            color="series:N",
        )
        .properties(width=WIDTH, height=260, title="Index of dispersion of counts")
    )


def rate_chart(t: np.ndarray, window_s: float = 60.0) -> alt.Chart:
    """Requests per second in consecutive windows."""
    c = window_counts(t, window_s)
    data = pl.DataFrame({"time_s": window_s * np.arange(c.size), "rate_per_s": c / window_s})
    return (
        alt.Chart(data)
        .mark_line()
        .encode(x=alt.X("time_s:Q", title="time (s)"), y=alt.Y("rate_per_s:Q", title="req/s"))
        .properties(width=WIDTH, height=200, title=f"Arrival rate ({window_s:g}-s windows)")
    )


def length_cdf_chart(fit: WorkloadFit) -> alt.Chart | None:
    """Empirical CDF of input/output tokens vs the chosen family and the empirical model."""
    if fit.lengths is None:
        return None
    rows = []
    for part in (fit.lengths.input, fit.lengths.output):
        m = part.to_marginal()
        grid = np.unique(np.geomspace(max(m.min, 1), max(m.max, 2), 150).round())
        # the data's own CDF, from the empirical model's integer-aligned bins
        rows.append(
            pl.DataFrame(
                {"tokens": grid, "cdf": m.empirical.cdf(grid + 0.5), "model": "empirical"}
            ).with_columns(pl.lit(part.column).alias("column"))
        )
        if m.chosen is not None:
            rows.append(
                pl.DataFrame(
                    {"tokens": grid, "cdf": m.chosen.cdf(grid + 0.5), "model": "chosen family"}
                ).with_columns(pl.lit(part.column).alias("column"))
            )
    data = pl.concat(rows, how="diagonal")
    return (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=alt.X("tokens:Q", scale=alt.Scale(type="log"), title="tokens"),
            y=alt.Y("cdf:Q", title="CDF"),
            color="model:N",
            column=alt.Column("column:N", title=None),
        )
        .properties(width=WIDTH // 2, height=220, title="Token-length CDFs")
    )


def write_report(fit: WorkloadFit, path: str | Path) -> Path:
    """Write the HTML report (tables + charts) to ``path``; returns the path."""
    path = Path(path)
    t = fit.arrival_s if fit.arrival_s is not None else np.array([])
    gaps = np.diff(t)
    mp = [c for c in fit.arrivals.candidates if "mean-preserving" in c.method]
    seen, uniq = set(), []
    for c in mp:
        if c.family not in seen:
            seen.add(c.family)
            uniq.append(c)
    charts = [
        iat_density_chart(gaps, uniq),
        qq_chart(gaps, uniq, "QQ plot of inter-arrival times (mean-preserving fits)"),
        dispersion_chart(fit),
        rate_chart(t),
    ]
    lengths_chart = length_cdf_chart(fit)
    if lengths_chart is not None and fit.lengths is not None:  # the chart exists with lengths
        charts.append(lengths_chart)
        cands = list(fit.lengths.output.selection.candidates)
        if fit.rows is not None and cands:
            values = fit.rows["output_tokens"].to_numpy().astype(np.float64)
            charts.append(qq_chart(values, cands, "QQ plot of output tokens"))
    chart = alt.vconcat(*charts).resolve_scale(color="independent")
    spec = fit.spec
    tables = [
        (
            "Inter-arrival candidates (chosen: lowest BIC among mean-preserving fits)",
            fit.arrivals.table(),
        )
    ]
    if fit.modulation is not None:
        tables.append(("Burst regime candidates", fit.modulation.table()))
    if fit.choice is not None:
        tables.append(
            (
                "Arrival model candidates (chosen: lowest gap KS + dispersion RMS log error, "
                "on the fitted rows; the empirical gap law scored out of sample)",
                fit.choice.candidates,
            )
        )
    if fit.lengths is not None:
        tables.append(("input_tokens candidates", fit.lengths.input.table()))
        tables.append(("output_tokens candidates", fit.lengths.output.table()))
        tables.append(("Output length vs load", fit.lengths.load))
    tables.append(("Index of dispersion", fit.burstiness.dispersion))
    intro = (
        f"<p>{spec.source.rows:,} requests over {spec.source.duration_s:,.1f} s "
        f"({spec.source.rate_per_s:.3g} req/s). Arrival model: <b>{spec.arrivals.model}</b>; "
        f"renewal family <b>{spec.arrivals.renewal.family}</b>. Spec sha256 {spec.sha256()[:12]}.</p>"
    )
    return write_html_report(
        path,
        title=f"burstlab fit: {spec.source.source}",
        intro=intro,
        notes=[f"• {n}" for n in spec.notes],
        tables=tables,
        chart=chart,
        digits=6,
    )
