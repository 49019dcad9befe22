"""The analysis sections of a card: burstiness and fitted models, from `burstlab.fitting`.

One call to the fitting stage (`fitting.fit`, what `burstlab fit` runs) gives everything the
card shows: its dispersion curve, its candidate tables with loglik / AIC / BIC / KS / AD / n,
the burst-regime choice, the length models with dependence and load coupling, and the spec
itself (published beside the data as `data/spec.json`). Nothing is recomputed here, so a card
and `burstlab fit` can never disagree.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl

from burstlab import fitting
from burstlab.cards.charts import save_card_chart
from burstlab.cards.stats import fmt, md_table

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
#: Candidate-table columns (Selection.table names → card headers).
SELECTION_COLUMNS = {
    "family": "family",
    "method": "method",
    "params": "params (scipy)",
    "n": "n",
    "loglik": "loglik",
    "aic": "AIC",
    "bic": "BIC",
    "delta_bic": "ΔBIC",
    "ks": "KS",
    "ad": "AD",
    "mean_ratio": "mean ratio",
    "chosen": "chosen",
}
SPEC_FILE = "data/spec.json"


@dataclass(frozen=True)
class FitSections:
    """What the fitting stage adds to a card: Markdown sections, chart paths, the spec file."""

    sections: list[tuple[str, str]]
    charts: list[str]
    spec_file: str | None


def fit_sections(frame: pl.DataFrame, out_dir: Path) -> FitSections:
    """Fit the workload of a requests table and render burstiness, arrivals and lengths."""
    if frame.height < 10:  # fitting.fit's own minimum
        return FitSections([], [], None)
    fit = fitting.fit(frame)
    fit.spec.save(out_dir / SPEC_FILE)
    curve = fit.burstiness.dispersion
    charts = save_card_chart(dispersion_chart(curve), out_dir, "dispersion")
    sections = [
        ("Burstiness", burstiness_markdown(fit.burstiness.row())),
        ("Arrival model", arrivals_markdown(fit.arrivals, fit.modulation, fit.spec.arrivals)),
    ]
    if fit.lengths is not None:
        sections.append(("Length models", lengths_markdown(fit.lengths)))
    sections.append(
        (
            "Workload spec",
            f"Everything above is in `{SPEC_FILE}` (burstlab workload spec v1): "
            f"`burstlab synth {SPEC_FILE} --duration 3600 --seed 1 --out load.parquet` "
            "generates a synthetic workload with these statistics.",
        )
    )
    return FitSections(sections, charts, SPEC_FILE)


def gap_shape_text(arrivals: Any) -> str:
    """How a modulated spec draws gap values (`ArrivalSpec.gap_shape`); '' for other models."""
    shape = getattr(arrivals, "gap_shape", None)
    if arrivals.model != "modulated" or not shape:
        return ""
    how = (
        "the regime orders the gaps and the fitted real-time gap law gives their values, so a "
        "client with a near-fixed cadence keeps it"
        if shape == "real-time"
        else "unit-mean gaps stretched by the local rate"
    )
    return f"Gap values: **{shape}** ({how})."


def burstiness_markdown(row: dict) -> str:
    """The burstiness table; a Poisson process has 1 for the CV and every dispersion index."""
    rows = [[label, _num(row.get(key))] for key, label in BURSTINESS_FIELDS.items()]
    return (
        "Computed by `burstlab.fitting` on the arrival times. For a Poisson process the CV and "
        "every index of dispersion are 1; values growing with the window mean bursts that last "
        "that long, which a single renewal process cannot reproduce.\n\n"
        + md_table(["statistic", "value"], rows)
        + "\n\n![dispersion](charts/dispersion.png)"
    )


def arrivals_markdown(fit: Any, modulation: Any, spec_arrivals: Any) -> str:
    """The chosen renewal family, every candidate's diagnostics, and the burst regime
    (`fit`: ArrivalFit, `modulation`: ModulationFit or None, `spec_arrivals`: ArrivalSpec)."""
    model = spec_arrivals.model
    best, res = fit.best, fit.resolution
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
    parts = [
        f"Renewal family: **{best.family}** ({best.method}; scipy parameters {params}). "
        f"{fit.n_gaps:,} gaps, mean {fit.mean_gap_s:.4g} s, CV {fit.cv:.3g}; {grid}.",
        "Selection: lowest BIC among the mean-preserving fits (they reproduce the request "
        "count; a plain MLE need not). KS and AD are distances, not tests: with parameters "
        "estimated from the same data their textbook p-values would be wrong.",
        selection_markdown(fit.table()),
    ]
    if modulation is not None:
        n = len(modulation.rate_curve.rates_per_s)
        parts += [
            f"Model used for generation: **{model}** — a rate curve ({n} window"
            f"{'s' if n != 1 else ''} of {modulation.rate_curve.window_s:g} s) times a burst "
            f"regime on {modulation.window_s:g} s windows: **{modulation.chosen.label}**, chosen "
            "because its implied dispersion curve is closest to the measured one (RMS of the "
            "log ratio). " + gap_shape_text(spec_arrivals),
            md_table(
                ["regime", "states", "loglik", "BIC", "IDC RMS log error", "levels", "chosen"],
                [
                    [
                        r["regime"],
                        r["states"],
                        round_ic(r["loglik"]),
                        round_ic(r["bic"]),
                        _num(r["idc_rms_log_error"]),
                        f"{r['level_min']:.3g}–{r['level_max']:.3g}",
                        "**yes**" if r["chosen"] else "",
                    ]
                    for r in modulation.table().iter_rows(named=True)
                ],
            ),
        ]
    else:
        parts.append(f"Model used for generation: **{model}** (too short for a burst regime).")
    return "\n\n".join(parts)


def lengths_markdown(lengths: Any) -> str:
    """Input and output token models, their dependence, and output length vs load."""
    parts = []
    for fit in (lengths.input, lengths.output):
        best = fit.best
        head = (
            f"**{fit.column}** ({fit.n:,} values, mean {fit.mean:,.1f}, "
            f"{fmt(fit.min)}–{fmt(fit.max)})"
        )
        head += f": best family **{best.family}** by BIC." if best else ": no family fitted."
        masses = ", ".join(f"{m.value:g} tokens ({m.prob:.2%})" for m in fit.point_masses)
        if masses:
            head += f" Point masses: {masses}."
        if fit.tail is not None:
            b = fit.tail.params.get("b")
            head += f" Tail: Pareto index {b:.3g} above {fit.tail.params.get('scale'):g} (Hill, top 5%)."
        head += " Synth samples the empirical model (log-space histogram + point masses)."
        parts += [head, selection_markdown(fit.table())]
    parts.append(
        f"Input/output dependence: Spearman {lengths.spearman:.3g}, Gaussian-copula ρ "
        f"{lengths.copula_rho:.3g}. Output length vs load (requests per window):"
    )
    parts.append(
        md_table(
            ["window (s)", "windows", "corr", "Spearman", "elasticity"],
            [
                [
                    r["window_s"],
                    r["n_windows"],
                    _num(r["corr"]),
                    _num(r["spearman"]),
                    _num(r["elasticity"]),
                ]
                for r in lengths.load.iter_rows(named=True)
            ],
        )
    )
    return "\n\n".join(parts)


def selection_markdown(table: pl.DataFrame) -> str:
    """A fitting `Selection.table()` as Markdown: one row per candidate, chosen in bold."""
    if table.is_empty():
        return ""
    cols = [c for c in SELECTION_COLUMNS if c in table.columns]
    rows = []
    for r in table.iter_rows(named=True):
        cells = []
        for c in cols:
            v = r[c]
            if c == "params":
                v = format_params(v)
            elif c == "chosen":
                v = "**yes**" if v else ""
            elif c in ("loglik", "aic", "bic", "delta_bic"):
                v = round_ic(v)
            elif isinstance(v, float):
                v = _num(v)
            cells.append(v)
        rows.append(cells)
    return md_table([SELECTION_COLUMNS[c] for c in cols], rows)


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
    """A statistic for the card: 4 significant digits; NaN and None print as blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def round_ic(value: float | None) -> float | None:
    """Log-likelihoods and information criteria: one decimal (differences matter, not digits)."""
    return None if value is None or math.isnan(value) else round(value, 1)


def format_params(params: str | dict[str, float]) -> str:
    """`a=0.871, scale=0.2076` from a params dict or its JSON text (Selection.table)."""
    values: dict[str, float]
    if isinstance(params, str):
        try:
            values = json.loads(params)
        except ValueError:
            return params
    else:
        values = params
    return ", ".join(f"{k}={v:.4g}" for k, v in values.items())
