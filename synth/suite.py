"""The fidelity suite (docs/design.md §4): how far a workload is from a held-out real window.

Every metric is an effect size over two canonical `requests` frames, never a p-value: with
tens of thousands of requests every test rejects, while the question a user asks is "is this
synthetic load as close to the real future as the real past was?". So each metric is judged
against the *real envelope*: windows of the held-out length taken from the training period,
each compared with the held-out window by the same metric. Real traces drift within an hour,
and the envelope is how far "real" itself wanders; a generator passes a metric when its value
lies inside that envelope widened by a slack (25 % by default).

Metric kinds:
- ``distance`` (0 is perfect, larger is worse): KS on inter-arrival times, RMSE between the
  ACFs of 1-second counts, Wasserstein-1 on log1p lengths, |Δ Spearman(input, output)|,
  |Δ per-window corr(count, mean output length)|.
- ``ratio`` (1 is perfect): index of dispersion of counts, candidate ÷ real, at 0.1–300 s.
- prefix sharing (`PREFIX_METRICS`, only when the real frame has ``hash_ids``): block-reuse
  rate candidate ÷ real (ratio), and KS distances between the reuse-distance distributions in
  requests and in seconds (one value per reused block: how far back the id was last used). A
  candidate without ids has reuse rate 0 and no distances (its KS is NaN: outside).

Times are seconds since the start of the compared window; a frame's observation span (needed
to count requests per bin, including empty bins at the end) defaults to its last arrival.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from burstlab.errors import SchemaError
from burstlab.results import Result, Summary
from burstlab.scalars import number
from burstlab.stats import FIDELITY_SCALES, busy_windows, count_acf, dispersion_index
from burstlab.synth.prefix import block_reuse

#: Count-bin widths (seconds) for the index of dispersion, as in docs/design.md §4.
DISPERSION_WINDOWS_S: tuple[float, ...] = FIDELITY_SCALES
#: Lags (in 1-second bins) of the count autocorrelation.
ACF_MAX_LAG = 60
#: Window (seconds) for the per-window correlation between load and output length.
LOAD_WINDOW_S = 60.0
#: Default widening of the real envelope before a verdict.
SLACK = 0.25
#: Name of the held-out real window in tables, frames and charts.
REAL = "real (held-out)"


def _dispersion_name(w: float) -> str:
    return f"dispersion_{w:g}s"


#: Metric name → kind, in report order.
METRICS: dict[str, str] = {
    "iat_ks": "distance",
    **{_dispersion_name(w): "ratio" for w in DISPERSION_WINDOWS_S},
    "acf_rmse": "distance",
    "w1_log_input": "distance",
    "w1_log_output": "distance",
    "spearman_diff": "distance",
    "load_corr_diff": "distance",
}
#: Prefix-sharing metrics, computed only when the real (reference) frame has ``hash_ids``.
PREFIX_METRICS: dict[str, str] = {
    "block_reuse_ratio": "ratio",
    "reuse_distance_ks": "distance",
    "reuse_distance_s_ks": "distance",
}
#: Every metric the suite can report, in report order, name → kind.
ALL_METRICS: dict[str, str] = {**METRICS, **PREFIX_METRICS}


# --------------------------------------------------------------------------- primitives


def _arrivals(frame: pl.DataFrame) -> np.ndarray:
    if "arrival_s" not in frame.columns:
        raise SchemaError(f"fidelity needs an 'arrival_s' column; found {frame.columns}")
    return np.sort(frame["arrival_s"].to_numpy().astype(np.float64))


def _lengths(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Input and output tokens of the successful requests (failed rows carry output 0)."""
    ok = frame.filter(~pl.col("failed").fill_null(False)) if "failed" in frame.columns else frame
    return (
        ok["input_tokens"].to_numpy().astype(np.float64),
        ok["output_tokens"].to_numpy().astype(np.float64),
    )


def load_length_corr(frame: pl.DataFrame, span_s: float, width_s: float = LOAD_WINDOW_S) -> float:
    """Pearson corr, over `width_s` bins with ≥ 1 request, between the request count and the
    mean output length (tokens). On Azure 2023 conv busy minutes have shorter outputs (≈ −0.8)."""
    c, m = busy_windows(
        frame["arrival_s"].to_numpy(), frame["output_tokens"].to_numpy(), width_s, 0.0, span_s
    )
    if c.size < 3:
        return float("nan")
    if c.std() == 0 or m.std() == 0:
        return float("nan")
    return float(np.corrcoef(c, m)[0, 1])


def snap(arrivals_s: np.ndarray, resolution_s: float | None) -> np.ndarray:
    """Arrival times floored to a timestamp grid of `resolution_s` seconds (None: unchanged).

    A source logged in whole seconds (BurstGPT) or 3-s buckets (Mooncake) has many zero gaps
    and all its requests of a bucket in one instant; continuous synthetic times would be
    "wrong" about both (Mooncake inter-arrival KS 0.89 unsnapped), so the comparison puts
    every frame on the source's grid first."""
    if resolution_s is None:
        return arrivals_s
    return np.floor(arrivals_s / resolution_s + 1e-9) * resolution_s


def _w1_log(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 between log1p of two token samples; NaN when either has no value (a
    window without a successful request: there is no distribution to compare)."""
    if a.size == 0 or b.size == 0:
        return float("nan")
    return float(stats.wasserstein_distance(np.log1p(a), np.log1p(b)))


def _spearman(frame: pl.DataFrame) -> float:
    x, y = _lengths(frame)
    if x.size < 3:
        return float("nan")
    # SciPy builds its result classes at run time: pyright sees no `statistic`
    return float(stats.spearmanr(x, y).statistic)  # pyright: ignore[reportAttributeAccessIssue]


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample KS distance; NaN when either sample is empty."""
    if a.size == 0 or b.size == 0:
        return float("nan")
    # SciPy builds its result classes at run time: pyright sees no `statistic`
    return float(stats.ks_2samp(a, b).statistic)  # pyright: ignore[reportAttributeAccessIssue]


def prefix_values(
    real: pl.DataFrame, candidate: pl.DataFrame, resolution_s: float | None = None
) -> dict[str, float]:
    """The `PREFIX_METRICS` of `candidate` against `real`; empty when `real` has no
    ``hash_ids``. Reuse is measured inside each frame (a window starts with a cold cache,
    real or synthetic); seconds on the `resolution_s` grid."""
    r = block_reuse(real, resolution_s)
    if r is None:
        return {}
    c = block_reuse(candidate, resolution_s)
    rate_c, dr_c, ds_c = c if c is not None else (0.0, np.zeros(0), np.zeros(0))
    rate_r, dr_r, ds_r = r
    return {
        "block_reuse_ratio": rate_c / rate_r if rate_r > 0 else float("nan"),
        "reuse_distance_ks": _ks(dr_r.astype(np.float64), dr_c.astype(np.float64)),
        "reuse_distance_s_ks": _ks(ds_r, ds_c),
    }


def _span(frame: pl.DataFrame, span_s: float | None) -> float:
    if span_s is not None:
        return float(span_s)
    return number(frame["arrival_s"].max() or 0.0, "arrival_s")


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Comparison:
    """The suite's values for one candidate frame against one reference (real) frame.

    `values` maps metric name → value (see METRICS for the kind). The curves behind the
    scalar metrics are kept for charts: dispersion index per bin width and the two ACFs.
    """

    values: dict[str, float]
    dispersion_real: dict[float, float]
    dispersion_candidate: dict[float, float]
    acf_real: np.ndarray
    acf_candidate: np.ndarray


def compare(
    real: pl.DataFrame,
    candidate: pl.DataFrame,
    *,
    span_s: float | None = None,
    candidate_span_s: float | None = None,
    resolution_s: float | None = None,
) -> Comparison:
    """Every docs/design.md §4 metric of `candidate` against `real` (both canonical requests
    frames); the prefix metrics only when `real` has ``hash_ids``.

    `span_s` is the real frame's observation span in seconds (default: its last arrival);
    `candidate_span_s` defaults to `span_s`. `resolution_s` snaps both frames' arrivals to
    that grid (`snap`) before any arrival metric (gaps, dispersion, ACF), so a source with
    whole-second (BurstGPT) or 3-second (Mooncake) timestamps is compared at its own
    resolution instead of being "wrong" about its zero gaps and its bucketed bursts.
    """
    span_r = _span(real, span_s)
    span_c = _span(candidate, candidate_span_s if candidate_span_s is not None else span_s)
    ta, tb = snap(_arrivals(real), resolution_s), snap(_arrivals(candidate), resolution_s)
    ga, gb = np.diff(ta), np.diff(tb)
    values: dict[str, float] = {}
    # SciPy builds its result classes at run time: pyright sees no `statistic`
    values["iat_ks"] = (
        float(stats.ks_2samp(ga, gb).statistic)  # pyright: ignore[reportAttributeAccessIssue]
        if ga.size and gb.size
        else float("nan")
    )
    disp_r = {w: dispersion_index(ta, w, 0.0, span_r) for w in DISPERSION_WINDOWS_S}
    disp_c = {w: dispersion_index(tb, w, 0.0, span_c) for w in DISPERSION_WINDOWS_S}
    for w in DISPERSION_WINDOWS_S:
        values[_dispersion_name(w)] = disp_c[w] / disp_r[w] if disp_r[w] > 0 else float("nan")
    acf_r = count_acf(ta, 1.0, ACF_MAX_LAG, 0.0, span_r)[1:]
    acf_c = count_acf(tb, 1.0, ACF_MAX_LAG, 0.0, span_c)[1:]
    values["acf_rmse"] = float(np.sqrt(np.nanmean((acf_r - acf_c) ** 2)))
    (ia, oa), (ib, ob) = _lengths(real), _lengths(candidate)
    values["w1_log_input"] = _w1_log(ia, ib)
    values["w1_log_output"] = _w1_log(oa, ob)
    values["spearman_diff"] = abs(_spearman(candidate) - _spearman(real))
    values["load_corr_diff"] = abs(
        load_length_corr(candidate, span_c) - load_length_corr(real, span_r)
    )
    values.update(prefix_values(real, candidate, resolution_s))
    return Comparison(values, disp_r, disp_c, acf_r, acf_c)


def window(frame: pl.DataFrame, start_s: float, end_s: float) -> pl.DataFrame:
    """Rows with start_s ≤ arrival_s < end_s, times rebased to the window start (seconds).

    The first row need not be at 0: a quiet opening is part of the window's behaviour."""
    return frame.filter(pl.col("arrival_s").is_between(start_s, end_s, closed="left")).with_columns(
        pl.col("arrival_s") - start_s
    )


def closeness(metric: str, value: float) -> float:
    """How far a metric value is from perfect, on one scale for ranking generators:
    the distance itself, or |ln ratio| for ratios (so 0.5× and 2× are equally wrong)."""
    if ALL_METRICS[metric] == "ratio":
        return abs(math.log(value)) if value > 0 else float("inf")
    return value


# --------------------------------------------------------------------------- envelope


@dataclass(frozen=True)
class Envelope:
    """How far real windows of the training period are from the held-out window.

    `windows` is a polars table, one row per (window start, metric); `low`/`high` the
    per-metric min and max over the windows. Distances use [0, high]."""

    window_s: float
    starts_s: tuple[float, ...]
    windows: pl.DataFrame
    low: dict[str, float]
    high: dict[str, float]

    def bounds(self, metric: str, slack: float = SLACK) -> tuple[float, float]:
        """The accepted range of `metric`: no farther from perfect than the farthest real
        window, widened by `slack` (0.25 = 25 %). Distances: [0, high·(1+slack)]. Ratios
        are judged in log space, symmetrically: a generator *closer* to the held-out window
        than every real window is never a failure, so the range is
        [e^-m / (1+slack), e^m · (1+slack)] with m = max |ln ratio| over the real windows
        (a real window with ratio 0 makes the range [0, ∞))."""
        lo, hi = self.low[metric], self.high[metric]
        if ALL_METRICS[metric] == "ratio":
            if lo <= 0:
                return 0.0, math.inf
            m = max(abs(math.log(lo)), abs(math.log(hi))) + math.log1p(slack)
            return math.exp(-m), math.exp(m)
        return 0.0, hi * (1.0 + slack)


def envelope(
    train: pl.DataFrame,
    heldout: pl.DataFrame,
    window_s: float,
    *,
    step_s: float | None = None,
    train_span_s: float | None = None,
    resolution_s: float | None = None,
) -> Envelope:
    """Compare every real training window of `window_s` seconds with the held-out window.

    `heldout` is rebased so it starts at 0 and spans `window_s` seconds. Windows start every
    `step_s` seconds (default window_s / 4, so a 40-min training period gives 5 windows of
    20 min); overlapping windows are fine, the envelope is a range, not a sample statistic.
    """
    span = _span(train, train_span_s)
    if span < window_s:
        raise SchemaError(
            f"training period is {span:.0f} s, shorter than the held-out window {window_s:.0f} s"
        )
    step = step_s if step_s is not None else window_s / 4.0
    starts = np.arange(0.0, span - window_s + 1e-9, step)
    rows = []
    for s in starts:
        cmp = compare(
            heldout,
            window(train, float(s), float(s) + window_s),
            span_s=window_s,
            resolution_s=resolution_s,
        )
        rows.extend({"start_s": float(s), "metric": m, "value": v} for m, v in cmp.values.items())
    table = pl.DataFrame(rows)
    agg = (
        table.filter(pl.col("value").is_not_nan())
        .group_by("metric")
        .agg(pl.col("value").min().alias("low"), pl.col("value").max().alias("high"))
    )
    low = dict(zip(agg["metric"], agg["low"], strict=True))
    high = dict(zip(agg["metric"], agg["high"], strict=True))
    for m in ALL_METRICS:
        low.setdefault(m, float("nan"))
        high.setdefault(m, float("nan"))
    return Envelope(float(window_s), tuple(float(s) for s in starts), table, low, high)


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class FidelityResult(Result):
    """Verdicts of one or more generators against a held-out real window.

    `verdicts` (polars, long form; also ``table()``): generator, metric, kind, value,
    closeness (0 = perfect), env_low, env_high, accept_low, accept_high, within (value inside
    the slackened envelope). `comparisons` keeps each generator's curves for charts;
    `envelope` the real-vs-real range. ``summary()`` is one row per metric, one column per
    generator, the envelope beside them.
    """

    verdicts: pl.DataFrame
    envelope: Envelope | None
    comparisons: dict[str, Comparison]
    slack: float = SLACK
    heldout_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def wide(self, column: str = "value") -> pl.DataFrame:
        """One row per metric, one column per generator (plus the envelope bounds)."""
        pivot = self.verdicts.pivot(on="generator", index="metric", values=column)
        env = self.verdicts.select("metric", "env_low", "env_high").unique("metric")
        order = pl.DataFrame({"metric": list(ALL_METRICS), "_o": range(len(ALL_METRICS))})
        return pivot.join(env, on="metric").join(order, on="metric").sort("_o").drop("_o")

    def within_all(self, generator: str) -> bool:
        """True when `generator` is inside the envelope on every metric."""
        rows = self.verdicts.filter(pl.col("generator") == generator)
        return bool(rows["within"].all())

    def table(self) -> pl.DataFrame:
        return self.verdicts

    def to_dict(self) -> dict[str, Any]:
        return {
            "slack": self.slack,
            "heldout_rows": self.heldout_rows,
            "verdicts": self.verdicts.to_dicts(),
            "notes": list(self.notes),
        }

    def summary(self) -> Summary:
        title = f"fidelity against {self.heldout_rows:,} held-out requests"
        if self.envelope is not None:
            inside = {
                g: bool(rows["within"].all())
                for (g,), rows in self.verdicts.group_by("generator", maintain_order=True)
            }
            title += " — inside the real envelope on every metric: " + ", ".join(
                f"{g} {'yes' if ok else 'no'}" for g, ok in inside.items()
            )
        s = Summary(title).add("value per metric (the real envelope beside it)", self.wide())
        if self.envelope is not None:
            s.add("inside the envelope (widened by the slack)", self.wide("within"))
        s.notes.extend(self.notes)
        return s

    def wins(self, generator: str, other: str) -> dict[str, bool]:
        """Per metric: is `generator` strictly closer to the held-out window than `other`?
        A value that could not be computed (null closeness) is the farthest."""
        c = self.wide("closeness")
        return {
            m: closer(a, b) for m, a, b in zip(c["metric"], c[generator], c[other], strict=True)
        }


def closer(a: float | None, b: float | None) -> bool:
    """Is closeness `a` strictly better than `b`? None (not computable) is +inf."""
    x = math.inf if a is None or math.isnan(a) else a
    y = math.inf if b is None or math.isnan(b) else b
    return x < y


def fidelity(
    heldout: pl.DataFrame,
    candidates: Mapping[str, pl.DataFrame],
    *,
    train: pl.DataFrame | None = None,
    envelope_: Envelope | None = None,
    window_s: float | None = None,
    step_s: float | None = None,
    train_span_s: float | None = None,
    slack: float = SLACK,
    resolution_s: float | None = None,
) -> FidelityResult:
    """Judge each candidate frame against the held-out real window.

    `heldout` must be rebased to start at 0; its span is `window_s` (default: its last
    arrival). Candidates are generated for the same duration. With `train` (span
    `train_span_s`, default its last arrival), the real envelope is computed and each value
    gets a verdict; `envelope_` passes one already computed (several seeds, one envelope);
    with neither, `within` is null.
    """
    span = _span(heldout, window_s)
    env = envelope_ or (
        envelope(
            train,
            heldout,
            span,
            step_s=step_s,
            train_span_s=train_span_s,
            resolution_s=resolution_s,
        )
        if train is not None
        else None
    )
    comparisons = {
        name: compare(heldout, frame, span_s=span, resolution_s=resolution_s)
        for name, frame in candidates.items()
    }
    rows = []
    for name, cmp in comparisons.items():
        for metric, kind in ALL_METRICS.items():
            if metric not in cmp.values:  # a prefix metric of a real frame without ids
                continue
            value = cmp.values[metric]
            row = {
                "generator": name,
                "metric": metric,
                "kind": kind,
                "value": value,
                "closeness": closeness(metric, value) if not math.isnan(value) else None,
                "env_low": None,
                "env_high": None,
                "accept_low": None,
                "accept_high": None,
                "within": None,
            }
            if env is not None:
                lo, hi = env.bounds(metric, slack)
                row.update(
                    env_low=env.low[metric],
                    env_high=env.high[metric],
                    accept_low=lo,
                    accept_high=hi,
                    within=bool(lo <= value <= hi) if not math.isnan(value) else False,
                )
            rows.append(row)
    schema = {
        "generator": pl.String,
        "metric": pl.String,
        "kind": pl.String,
        "value": pl.Float64,
        "closeness": pl.Float64,
        "env_low": pl.Float64,
        "env_high": pl.Float64,
        "accept_low": pl.Float64,
        "accept_high": pl.Float64,
        "within": pl.Boolean,
    }
    table = pl.DataFrame(rows, schema=schema)
    return FidelityResult(table, env, comparisons, slack, heldout.height)


def split_holdout(
    frame: pl.DataFrame, train_s: float, heldout_s: float, *, gap_s: float = 0.0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a trace into a training period [0, train_s) and a held-out window
    [train_s + gap_s, + heldout_s), the latter rebased to start at 0 (seconds)."""
    start = train_s + gap_s
    return window(frame, 0.0, train_s), window(frame, start, start + heldout_s)


def summary_lines(result: FidelityResult, generators: Sequence[str] | None = None) -> list[str]:
    """A plain-text table (one line per metric) for terminals and logs."""
    names = list(generators or result.comparisons)
    wide = result.wide()
    within = result.wide("within") if result.envelope is not None else None
    head = f"{'metric':<18}{'envelope':>18}" + "".join(f"{n:>16}" for n in names)
    lines = [head]
    for i, metric in enumerate(wide["metric"]):
        lo, hi = wide["env_low"][i], wide["env_high"][i]
        env = f"[{lo:.3f}, {hi:.3f}]" if lo is not None else "-"
        cells = []
        for n in names:
            v = wide[n][i]
            mark = ""
            if within is not None:
                mark = " ok" if within[n][i] else " !!"
            cells.append(f"{v:>13.3f}{mark}")
        lines.append(f"{metric:<18}{env:>18}" + "".join(cells))
    return lines
