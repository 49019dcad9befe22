"""Serverless workloads: per-function statistics from per-minute counts (with timer detection),
execution times, cold-start durations and their components, and gaps between cold starts.

Reference values (Huawei serverless cold-start study, as given in issue 3) are printed beside
the measured ones: cold-start time lognormal with mean 3.24 s and s.d. 7.10 s; gaps between
cold starts Weibull with mean 1.25 s and s.d. 3.66 s. The comparison is on mean and s.d. of
the data and of the fitted family, and on which family the data choose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from burstlab.errors import FitError, SchemaError
from burstlab.fitting.arrivals import MEAN_PRESERVING, fit_positive
from burstlab.fitting.select import Selection
from burstlab.scalars import integer, number
from burstlab.spec import (
    ArrivalSpec,
    FamilyFit,
    GroupSpec,
    RateCurve,
    SourceFingerprint,
    WorkloadSpec,
)

#: Huawei reference: (family, mean s, s.d. s).
HUAWEI_COLD_START = ("lognormal", 3.24, 7.10)
HUAWEI_COLD_START_GAP = ("weibull", 1.25, 3.66)
#: A function is a timer when ≥ 80 % of the gaps between its active minutes are one value
#: and its count per active minute is nearly constant (CV ≤ 0.25): a busy function that is
#: active every minute has a dominant gap of 1 too, but its counts vary.
TIMER_SHARE = 0.8
TIMER_COUNT_CV = 0.25
COMPONENTS = ("pod_allocation_s", "deploy_code_s", "deploy_dependency_s", "scheduling_s")


def _require(lf: pl.LazyFrame, cols: list[str], kind: str) -> None:
    have = lf.collect_schema().names()
    missing = [c for c in cols if c not in have]
    if missing:
        raise SchemaError(f"{kind} table lacks {missing}; found {have}")


def function_stats(invocations: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Per function (app, function, trigger): total invocations, active minutes, span,
    mean and CV of per-minute counts over the span (zeros included), and timer detection:
    ``period_min`` is the dominant gap between active minutes and ``periodic`` is true when
    it accounts for ≥ 80 % of the gaps and the count per active minute is nearly constant
    (timer-triggered functions fire on a schedule)."""
    lf = invocations.lazy()
    _require(lf, ["function", "minute", "count"], "invocations")
    keys = [c for c in ("app", "function", "trigger") if c in lf.collect_schema().names()]
    per = (
        lf.group_by([*keys, "minute"])
        .agg(pl.col("count").sum())
        .filter(pl.col("count") > 0)
        .sort([*keys, "minute"])
        .with_columns(pl.col("minute").diff().over(keys).alias("gap"))
    )
    span = pl.col("minute").max() - pl.col("minute").min() + 1
    stats = per.group_by(keys).agg(
        pl.col("count").sum().alias("invocations"),
        pl.len().alias("active_minutes"),
        span.alias("span_minutes"),
        pl.col("count").sum().alias("_sum"),
        (pl.col("count").cast(pl.Float64) ** 2).sum().alias("_sum2"),
        pl.col("gap").drop_nulls().mode().first().alias("period_min"),
        pl.col("gap").drop_nulls().len().alias("_gaps"),
        (pl.col("gap") == pl.col("gap").drop_nulls().mode().first()).sum().alias("_mode_n"),
    )
    mean = pl.col("_sum") / pl.col("span_minutes")
    var = pl.col("_sum2") / pl.col("span_minutes") - mean**2
    return (
        stats.with_columns(
            mean.alias("mean_per_minute"),
            (var.clip(0.0).sqrt() / mean).alias("cv_per_minute"),
            (pl.col("_mode_n") / pl.col("_gaps")).alias("period_share"),
            (
                (
                    pl.col("_sum2") / pl.col("active_minutes")
                    - (pl.col("_sum") / pl.col("active_minutes")) ** 2
                )
                .clip(0.0)
                .sqrt()
                / (pl.col("_sum") / pl.col("active_minutes"))
            ).alias("_active_cv"),
        )
        .with_columns(
            (
                (pl.col("_gaps") >= 3)
                & (pl.col("period_share") >= TIMER_SHARE)
                & (pl.col("_active_cv") <= TIMER_COUNT_CV)
            )
            .fill_null(False)
            .alias("periodic")
        )
        .drop("_sum", "_sum2", "_gaps", "_mode_n", "_active_cv")
        .sort("invocations", descending=True)
        .collect()
    )


def _moments(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else math.nan


@dataclass
class DurationFit:
    """Fits of one positive duration (seconds), compared with a published reference."""

    name: str
    n: int
    mean_s: float
    sd_s: float
    selection: Selection
    reference: tuple[str, float, float] | None = None

    @property
    def best(self) -> FamilyFit:
        return self.selection.best

    def comparison(self) -> pl.DataFrame:
        """measured vs reference: family, mean, s.d. of the data and of the chosen fit."""
        best = self.best
        d = best.frozen()
        rows = [
            {"what": "data", "family": None, "mean_s": self.mean_s, "sd_s": self.sd_s},
            {
                "what": "fit",
                "family": best.family,
                "mean_s": float(d.mean()),
                "sd_s": float(d.std()),
            },
        ]
        if self.reference:
            fam_name, m, s = self.reference
            rows.append({"what": "reference", "family": fam_name, "mean_s": m, "sd_s": s})
        return pl.DataFrame(rows)


def fit_duration(
    values: np.ndarray, name: str, reference: tuple[str, float, float] | None = None
) -> DurationFit:
    """Renewal-family fits (by BIC among mean-preserving) of positive durations in seconds."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    if x.size < 10:
        raise FitError(f"{name}: need ≥ 10 positive values to fit, found {x.size}")
    mean, sd = _moments(x)
    return DurationFit(
        name, int(x.size), mean, sd, Selection(fit_positive(x), "bic", MEAN_PRESERVING), reference
    )


def execution_times(function_requests: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Per function: requests, mean / p50 / p99 / max execution time (seconds)."""
    lf = function_requests.lazy()
    _require(lf, ["function", "duration_s"], "function_requests")
    keys = [c for c in ("app", "function") if c in lf.collect_schema().names()]
    d = pl.col("duration_s")
    return (
        lf.group_by(keys)
        .agg(
            pl.len().alias("requests"),
            d.mean().alias("mean_s"),
            d.median().alias("p50_s"),
            d.quantile(0.99).alias("p99_s"),
            d.max().alias("max_s"),
        )
        .sort("requests", descending=True)
        .collect()
    )


@dataclass
class ColdStartFit:
    """Cold-start duration, its components and the gaps between cold starts."""

    total: DurationFit
    gaps: DurationFit | None
    components: pl.DataFrame  # component, mean_s, share_of_total

    def comparison(self) -> pl.DataFrame:
        """Measured vs the Huawei reference, both quantities."""
        parts = [self.total.comparison().with_columns(pl.lit("cold_start").alias("quantity"))]
        if self.gaps:
            parts.append(self.gaps.comparison().with_columns(pl.lit("gap").alias("quantity")))
        return pl.concat(parts).select("quantity", "what", "family", "mean_s", "sd_s")


def fit_cold_starts(cold_starts: pl.DataFrame | pl.LazyFrame) -> ColdStartFit:
    """Fit a canonical ``cold_starts`` table: total time, components, gaps between starts."""
    lf = cold_starts.lazy()
    _require(lf, ["arrival_s", "total_s"], "cold_starts")
    df = lf.sort("arrival_s").collect()
    total = fit_duration(df["total_s"].to_numpy(), "cold_start_s", HUAWEI_COLD_START)
    gaps_raw = np.diff(df["arrival_s"].to_numpy())
    gaps = (
        fit_duration(gaps_raw, "cold_start_gap_s", HUAWEI_COLD_START_GAP)
        if np.count_nonzero(gaps_raw > 0) >= 10
        else None
    )
    tot = float(df["total_s"].sum())
    comps = [
        {
            "component": c,
            "mean_s": number(df[c].mean(), c),
            "share_of_total": float(df[c].sum()) / tot if tot > 0 else math.nan,
        }
        for c in COMPONENTS
        if c in df.columns and df[c].null_count() < df.height
    ]
    return ColdStartFit(total, gaps, pl.DataFrame(comps))


#: Gap shape inside a minute for timer functions: gamma with this shape (CV 0.1) makes the
#: operational-time process nearly regular, one firing per scheduled minute.
TIMER_GAMMA_SHAPE = 100.0


def function_specs(
    invocations: pl.DataFrame | pl.LazyFrame,
    *,
    top: int | None = None,
    min_invocations: int = 10,
) -> dict[str, WorkloadSpec]:
    """One arrival spec per function from per-minute counts (what synth's serverless
    generator runs): model ``modulated`` with a 60-s rate curve over the function's span
    (zeros included), and within a minute exponential gaps — or nearly regular ones
    (gamma shape 100) for a function detected as a timer. ``top`` keeps the busiest."""
    lf = invocations.lazy()
    _require(lf, ["function", "minute", "count"], "invocations")
    stats = function_stats(lf)
    stats = stats.filter(pl.col("invocations") >= min_invocations)
    if top is not None:
        stats = stats.head(top)
    keys = [c for c in ("app", "function", "trigger") if c in stats.columns]
    per = lf.group_by([*keys, "minute"]).agg(pl.col("count").sum()).collect()
    source = (
        str(lf.select(pl.col("source").first()).collect().item())
        if "source" in lf.collect_schema().names()
        else "invocations"
    )
    out: dict[str, WorkloadSpec] = {}
    for row in stats.iter_rows(named=True):
        sel = per
        for k in keys:
            sel = sel.filter(pl.col(k) == row[k]) if row[k] is not None else sel
        first, last = integer(sel["minute"].min(), "minute"), integer(sel["minute"].max(), "minute")
        counts = np.zeros(last - first + 1)
        counts[sel["minute"].to_numpy() - first] = sel["count"].to_numpy()
        rate = float(counts.sum() / (counts.size * 60.0))
        if row["periodic"]:
            renewal = FamilyFit(
                "gamma",
                {"a": TIMER_GAMMA_SHAPE, "scale": 1.0 / (rate * TIMER_GAMMA_SHAPE)},
                "timer (nearly regular)",
            )
        else:
            renewal = FamilyFit("exponential", {"scale": 1.0 / rate}, "mle")
        name = "/".join(str(row[k]) for k in keys if row[k] is not None)
        out[name] = WorkloadSpec(
            source=SourceFingerprint(
                source=source,
                rows=int(counts.sum()),
                duration_s=counts.size * 60.0,
                rate_per_s=rate,
                table="invocations",
                where=" AND ".join(f"{k} = {row[k]!r}" for k in keys if row[k] is not None),
                window=[first * 60.0, (last + 1) * 60.0],
            ),
            arrivals=ArrivalSpec(
                renewal=renewal,
                model="modulated",
                rate_curve=RateCurve(60.0, [float(c) / 60.0 for c in counts], first * 60.0),
            ),
            notes=[f"per-minute counts of one function; periodic={row['periodic']}"],
        )
    return out


def functions_workload(
    invocations: pl.DataFrame | pl.LazyFrame, *, top: int | None = None
) -> WorkloadSpec:
    """All functions of an invocations table as one spec: a group per function (weights =
    invocation shares, key ``function``); the top level is the summed per-minute rate curve
    with exponential gaps within a minute."""
    specs = function_specs(invocations, top=top)
    if not specs:
        raise SchemaError("no function has enough invocations to fit")
    curves: list[tuple[RateCurve, list[float]]] = []
    for s in specs.values():
        # function_specs gives every spec a per-minute rate curve and the window it covers
        assert s.arrivals.rate_curve is not None and s.source.window is not None
        curves.append((s.arrivals.rate_curve, s.source.window))
    start = min(curve.start_s for curve, _ in curves)
    end = max(window[1] for _, window in curves)
    rates = np.zeros(round((end - start) / 60.0))
    for curve, _ in curves:
        r = np.asarray(curve.rates_per_s)
        i = round((curve.start_s - start) / 60.0)
        rates[i : i + r.size] += r
    total = sum(s.source.rows for s in specs.values())
    mean_rate = total / (rates.size * 60.0)
    first = next(iter(specs.values()))
    return WorkloadSpec(
        source=SourceFingerprint(
            source=first.source.source,
            rows=total,
            duration_s=rates.size * 60.0,
            rate_per_s=mean_rate,
            table="invocations",
            by="function",
            window=[start, end],
        ),
        arrivals=ArrivalSpec(
            renewal=FamilyFit("exponential", {"scale": 1.0 / mean_rate}, "mle"),
            model="modulated",
            rate_curve=RateCurve(60.0, [float(r) for r in rates], start),
        ),
        groups=[
            GroupSpec(name, s.source.rows / total, s, key="function") for name, s in specs.items()
        ],
        notes=["serverless functions from per-minute counts; generate from the groups"],
    )
