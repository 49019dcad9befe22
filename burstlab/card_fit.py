"""The analysis sections of a card: burstiness and fitted models, from `burstlab.fitting`.

The card shows the fitting stage's own numbers (its dispersion curve, its candidate table with
loglik / AIC / BIC / KS / AD / n) rather than recomputing anything, so a card and
`burstlab fit` can never disagree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import altair as alt
import polars as pl

from burstlab.card_charts import save_card_chart
from burstlab.card_stats import md_table

#: Burstiness summary fields a card shows, with their labels (units in the label).
BURSTINESS_FIELDS = {
    "iat_cv": "inter-arrival CV (1 = Poisson)",
    "idc_1s": "index of dispersion of counts, 1 s",
    "idc_10s": "index of dispersion of counts, 10 s",
    "idc_60s": "index of dispersion of counts, 60 s",
    "idc_300s": "index of dispersion of counts, 300 s",
    "acf1_1s": "ACF of 1 s counts at lag 1",
    "hurst": "Hurst exponent (aggregated variance)",
    "peak_to_mean": "peak / mean of the 60 s rate",
    "peak_to_trough": "peak / trough of the 60 s rate",
}


def fit_sections(frame: pl.DataFrame, out_dir: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(sections, chart paths) for a requests table: burstiness, then arrival models."""
    from burstlab.fitting.arrivals import fit_arrivals
    from burstlab.fitting.burstiness import burstiness

    sections, charts = [], []
    if frame.height >= 3:
        report = burstiness(frame, fit_windows=False)
        charts += save_card_chart(dispersion_chart(report.dispersion()), out_dir, "dispersion")
        sections.append(("Burstiness", burstiness_markdown(report.table().row(0, named=True))))
        sections.append(("Arrival model", arrivals_markdown(fit_arrivals(frame))))
    return sections, charts


def burstiness_markdown(row: dict) -> str:
    """The burstiness table; a Poisson process has 1 for the CV and every dispersion index."""
    rows = [[label, _num(row.get(key))] for key, label in BURSTINESS_FIELDS.items()]
    return (
        "Computed by `burstlab.fitting.burstiness` on the arrival times. For a Poisson process "
        "the CV and every index of dispersion are 1; values growing with the window mean bursts "
        "that last that long (a renewal model cannot reproduce them).\n\n"
        + md_table(["statistic", "value"], rows)
        + "\n\n![dispersion](charts/dispersion.png)"
    )


def arrivals_markdown(fit) -> str:
    """The chosen renewal family and every candidate's diagnostics (`ArrivalFit`)."""
    best = fit.best
    res = fit.resolution
    grid = (
        f"timestamps on a {res.resolution_s:g} s grid ({res.zero_gap_share:.1%} of gaps are 0): "
        "fitted with an interval-censored likelihood, zero gaps kept"
        if res.resolution_s
        else "timestamps treated as continuous"
    )
    stderr = best.stderr or {}
    params = ", ".join(
        f"{k} = {v:.4g}" + (f" ± {stderr[k]:.2g}" if k in stderr else "")
        for k, v in best.params.items()
    )
    table = fit.table()
    rows = [
        [
            r["family"],
            r["method"],
            _params(r["params"]),
            r["n"],
            *(round(r[k], 1) for k in ("loglik", "aic", "bic", "delta_bic")),
            *(_num(r[k]) for k in ("ks", "ad", "mean_ratio")),
            "**yes**" if r["chosen"] else "",
        ]
        for r in table.iter_rows(named=True)
    ]
    return (
        f"Chosen renewal family: **{best.family}** ({best.method}; scipy parameters {params}). "
        f"{fit.n_gaps:,} gaps, mean {fit.mean_gap_s:.4g} s, CV {fit.cv:.3g}; {grid}.\n\n"
        "Selection: lowest BIC among the mean-preserving fits (they reproduce the request "
        "count; a plain MLE need not). KS and AD are distances, not tests: with parameters "
        "estimated from the same data their textbook p-values would be wrong.\n\n"
        + md_table(
            [
                "family",
                "method",
                "params",
                "n",
                "loglik",
                "AIC",
                "BIC",
                "ΔBIC",
                "KS",
                "AD",
                "mean ratio",
                "chosen",
            ],
            rows,
        )
    )


def dispersion_chart(curve: pl.DataFrame) -> alt.LayerChart:
    """Index of dispersion vs window on log–log axes, with the Poisson line at 1."""
    data = curve.select("window_s", "idc").drop_nulls().to_pandas()
    line = (
        alt.Chart(data, title="index of dispersion of counts")
        .mark_line(point=True)
        .encode(
            x=alt.X("window_s:Q", scale=alt.Scale(type="log"), title="window (s)"),
            y=alt.Y("idc:Q", scale=alt.Scale(type="log"), title="variance / mean of counts"),
        )
    )
    poisson = (
        alt.Chart(pl.DataFrame({"y": [1.0]}).to_pandas())
        .mark_rule(strokeDash=[4, 4])
        .encode(y="y:Q")
    )
    return (line + poisson).properties(width=640, height=220)


def _num(value: object) -> object:
    """Round a statistic for the card (4 significant digits; NaN/None stay blank)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def _params(text: str) -> str:
    try:
        params = json.loads(text)
    except (TypeError, ValueError):
        return str(text)
    return ", ".join(f"{k}={v:.4g}" for k, v in params.items())
