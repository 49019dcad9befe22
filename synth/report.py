"""The fidelity report: one HTML page (works offline) with the verdict table and charts.

Charts (altair): the index-of-dispersion curve of the held-out window, the synthetic workload
and every baseline; the ACFs of 1-second counts; input and output length CDFs; and a
"score" chart where each metric's value is divided by its accepted limit (≤ 1 is inside the
real envelope with slack), so metrics of different units sit on one axis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from burstlab.charts import write_html_report
from burstlab.synth.suite import ACF_MAX_LAG, ALL_METRICS, REAL, FidelityResult


def _dispersion_rows(result: FidelityResult) -> pl.DataFrame:
    rows = []
    for name, cmp in result.comparisons.items():
        for w, d in cmp.dispersion_candidate.items():
            rows.append({"generator": name, "window_s": w, "dispersion": d})
    first = next(iter(result.comparisons.values()))
    rows += [
        {"generator": REAL, "window_s": w, "dispersion": d}
        for w, d in first.dispersion_real.items()
    ]
    return pl.DataFrame(rows).filter(pl.col("dispersion") > 0)


def _acf_rows(result: FidelityResult) -> pl.DataFrame:
    lags = np.arange(1, ACF_MAX_LAG + 1)
    first = next(iter(result.comparisons.values()))
    parts = [pl.DataFrame({"generator": REAL, "lag_s": lags, "acf": first.acf_real})]
    for name, cmp in result.comparisons.items():
        parts.append(pl.DataFrame({"generator": name, "lag_s": lags, "acf": cmp.acf_candidate}))
    return pl.concat(parts)


def _cdf_rows(frames: Mapping[str, pl.DataFrame], points: int = 200) -> pl.DataFrame:
    q = np.linspace(0.0, 1.0, points)
    parts = []
    for name, f in frames.items():
        for col in ("input_tokens", "output_tokens"):
            x = f[col].to_numpy()
            if x.size:
                parts.append(
                    pl.DataFrame(
                        {"generator": name, "length": col, "tokens": np.quantile(x, q), "cdf": q}
                    )
                )
    return pl.concat(parts).filter(pl.col("tokens") > 0)


def score_table(result: FidelityResult) -> pl.DataFrame:
    """Each value ÷ its accepted limit on the closeness scale (≤ 1 = inside the envelope)."""
    t = result.verdicts.filter(pl.col("accept_high").is_not_null())
    scores = []
    for row in t.iter_rows(named=True):
        v, hi = row["value"], row["accept_high"]
        if ALL_METRICS[row["metric"]] == "ratio":
            lim = math.log(hi)
            s = abs(math.log(v)) / lim if v and v > 0 and lim > 0 else float("inf")
        else:
            s = v / hi if hi > 0 else float("inf")
        scores.append(s)
    return t.select("generator", "metric").with_columns(pl.Series("score", scores))


def fidelity_chart(result: FidelityResult, frames: Mapping[str, pl.DataFrame]) -> alt.VConcatChart:
    """All report charts as one altair chart (frames: name → requests frame, REAL included)."""
    color = alt.Color("generator:N", title="generator")
    disp = (
        alt.Chart(_dispersion_rows(result), title="Index of dispersion of counts")
        .mark_line(point=True)
        .encode(
            alt.X("window_s:Q", scale=alt.Scale(type="log"), title="window (s)"),
            alt.Y("dispersion:Q", scale=alt.Scale(type="log"), title="variance / mean"),
            color,
        )
    )
    acf = (
        alt.Chart(_acf_rows(result), title="ACF of 1-second counts")
        .mark_line()
        .encode(alt.X("lag_s:Q", title="lag (s)"), alt.Y("acf:Q", title="autocorrelation"), color)
    )
    cdf = (
        alt.Chart(_cdf_rows(frames), title="Length CDFs")
        .mark_line()
        .encode(
            alt.X("tokens:Q", scale=alt.Scale(type="log"), title="tokens"),
            alt.Y("cdf:Q", title="CDF"),
            color,
            alt.Column("length:N", title=None),
        )
    )
    charts: list[alt.HConcatChart | alt.Chart | alt.LayerChart] = [alt.hconcat(disp, acf), cdf]
    if result.envelope is not None:
        scores = score_table(result).with_columns(pl.col("score").clip(upper_bound=20.0))
        pts = (
            alt.Chart(
                scores, title="Score: value ÷ accepted limit (≤ 1 is inside the real envelope)"
            )
            .mark_point(filled=True, size=70)
            .encode(
                alt.X("score:Q", scale=alt.Scale(type="symlog"), title="score (capped at 20)"),
                alt.Y("metric:N", sort=list(ALL_METRICS), title=None),
                color,
            )
        )
        rule = alt.Chart(pl.DataFrame({"x": [1.0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
        charts.append(pts + rule)
    return alt.vconcat(*charts)


def write_report(
    result: FidelityResult,
    frames: Mapping[str, pl.DataFrame],
    dest: str | Path,
    *,
    title: str = "burstlab fidelity report",
    notes: list[str] | None = None,
    extra_tables: list[tuple[str, pl.DataFrame]] | None = None,
) -> Path:
    """Write the HTML report (self-contained: the chart library is inlined, so it opens
    offline) and return its path. `extra_tables` (caption, table) go after the verdicts,
    e.g. the per-seed summary of a hold-out run."""
    tables = [("Values (distance: 0 is perfect; ratio: 1 is perfect)", result.wide())]
    if result.envelope is not None:
        tables.append(("Inside the real envelope (25 % slack)?", result.wide("within")))
    tables += extra_tables or []
    intro = (
        f"<p>Held-out window: {result.heldout_rows} requests. "
        "Metrics and the envelope are defined in docs/synth.md.</p>"
    )
    return write_html_report(
        dest,
        title=title,
        intro=intro,
        notes=notes or [],
        tables=tables,
        chart=fidelity_chart(result, frames),
    )
