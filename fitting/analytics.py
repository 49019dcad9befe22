"""Burstiness and rate analytics of an arrival process: the numbers that say how bursty it is.

- inter-arrival CV (1 for Poisson);
- index of dispersion of counts IDC(T) = Var N(T) / E N(T) over window scales from 0.1 s to
  1 h — a curve, because a renewal process is flat at ≈ CV² while real load keeps rising;
- ACF of 1-second counts (statsmodels);
- Hurst exponent by the aggregated-variance method (slope of log Var of the m-aggregated mean
  of 1-s counts against log m is 2H − 2; H = 0.5 for short-range dependence);
- peak/mean and peak/trough of the 60-s rate; the rate curve with an STL/MSTL decomposition
  when the trace covers at least two days;
- all of it per group (`by="model"`) and per 10-minute window (rate, CV, best family).

Times are seconds, rates requests per second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from burstlab.errors import SchemaError
from burstlab.fitting.arrivals import (
    arrival_times,
    detect_resolution,
    fit_arrivals,
    positive_param,
)
from burstlab.results import Result, Summary
from burstlab.spec import WindowFit
from burstlab.stats import (
    FIDELITY_SCALES,
    count_acf,
    count_moments,
    default_scales,
    dispersion_curve,
    n_windows,
    sorted_times,
    sparse,
    window_counts,
)


def hurst_aggvar(t: np.ndarray, window_s: float = 1.0) -> float:
    """Hurst exponent by the aggregated-variance method on ``window_s`` counts.

    For block sizes m on a log grid from 1 to N/10, Var(mean of m consecutive counts) ∝
    m^(2H−2); H is 1 + slope/2 of the least-squares line in log-log. NaN when too short, or
    when the count series is too long or too empty to hold (`burstlab.stats.sparse`).
    """
    if sparse(t, n_windows(t, window_s)):
        return math.nan
    c = window_counts(t, window_s).astype(np.float64)
    if c.size < 100:
        return math.nan
    ms = np.unique(np.floor(np.logspace(0, math.log10(c.size / 10), 20)).astype(int))
    xs, ys = [], []
    for m in ms:
        k = c.size // m
        agg = c[: k * m].reshape(k, m).mean(axis=1)
        v = agg.var(ddof=1)
        if k >= 10 and v > 0:
            xs.append(math.log(m))
            ys.append(math.log(v))
    if len(xs) < 3:
        return math.nan
    slope = float(np.polyfit(xs, ys, 1)[0])
    return 1.0 + slope / 2.0


@dataclass
class RateDecomposition:
    """STL (one period) or MSTL (daily + weekly) decomposition of the hourly rate."""

    window_s: float
    periods: list[int]  # in windows
    frame: pl.DataFrame  # start_s, rate, trend, seasonal_<period>…, resid
    seasonal_strength: float  # 1 − Var(resid)/Var(seasonal + resid), clipped to [0, 1]


#: `decompose_rate` decomposes at most this many rate windows (20,000 hours: 2.3 years).
MAX_DECOMPOSE_WINDOWS = 20_000


def decompose_rate(t: np.ndarray, window_s: float = 3600.0) -> RateDecomposition | None:
    """Trend + daily (+ weekly) seasonality of the rate, or None when the trace covers less
    than two days (a period must repeat at least twice to be told apart from trend) or more
    than `MAX_DECOMPOSE_WINDOWS` windows."""
    from statsmodels.tsa.seasonal import MSTL, STL  # heavy (~0.4 s): not at import

    if n_windows(t, window_s) > MAX_DECOMPOSE_WINDOWS:
        return None
    c = window_counts(t, window_s).astype(np.float64) / window_s
    day = round(86400 / window_s)
    if day < 2 or c.size < 2 * day:
        return None
    # MSTL keeps a period only when the series is MORE than twice as long
    periods = [day] + ([7 * day] if c.size > 14 * day else [])
    if len(periods) == 1:
        res = STL(c, period=day, robust=True).fit()
        seasonal = {f"seasonal_{day}": res.seasonal}
    else:
        res = MSTL(c, periods=periods).fit()
        seasonal = {f"seasonal_{p}": res.seasonal[:, i] for i, p in enumerate(periods)}
    total_seasonal = sum(seasonal.values())
    denom = float(np.var(total_seasonal + res.resid))
    strength = max(0.0, 1.0 - float(np.var(res.resid)) / denom) if denom > 0 else 0.0
    frame = pl.DataFrame(
        {
            "start_s": float(t[0]) + window_s * np.arange(c.size),
            "rate": c,
            "trend": res.trend,
            **seasonal,
            "resid": res.resid,
        }
    )
    return RateDecomposition(window_s, periods, frame, strength)


#: Per-window family fits use at most this many of the window's gaps (a descriptive
#: summary; the full-trace fit uses every gap).
WINDOW_FIT_MAX = 5000
#: At most this many windows per trace (138 days of 10-minute windows), and at most
#: max(`SPARSE_WINDOW_FITS`, arrivals): a longer or sparser trace gets wider windows, a whole
#: multiple of the asked width (they go into the spec, one entry each: 16 requests spread
#: over years would otherwise make a 3 MB spec of empty windows).
MAX_WINDOW_FITS = 20_000
SPARSE_WINDOW_FITS = 1000


def window_fits(
    t: np.ndarray, window_s: float = 600.0, min_gaps: int = 50, fit: bool = True
) -> list[WindowFit]:
    """Per-window arrival statistics: count, rate, IAT CV and (with ≥ ``min_gaps`` gaps) the
    best renewal family with its parameters — how the process drifts over the trace. Rate and
    CV use every arrival; the family fit uses every k-th gap so that at most `WINDOW_FIT_MAX`
    remain, without standard errors, to stay fast on long traces. A trace longer than
    `MAX_WINDOW_FITS` windows (or a sparse one, see there) gets windows of a whole multiple
    of ``window_s``."""
    window_s = positive_param(window_s, "window_s")
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0:
        return []
    t0 = float(t[0])
    span = float(t[-1]) - t0
    most = min(MAX_WINDOW_FITS, max(SPARSE_WINDOW_FITS, t.size))
    if span / window_s > most:
        window_s *= math.ceil(span / window_s / most)
    n = max(1, math.ceil(span / window_s))
    idx = np.minimum(np.floor((t - t0) / window_s).astype(np.int64), n - 1)
    bounds = np.searchsorted(idx, np.arange(n + 1))
    out = []
    for i in range(n):
        seg = t[bounds[i] : bounds[i + 1]]
        start = t0 + i * window_s
        dur = min(window_s, float(t[-1]) - start) if i == n - 1 else window_s
        if seg.size == 0:  # a quiet window (many of them in a sparse trace): nothing to measure
            out.append(WindowFit(start, max(dur, 1e-9), 0.0, None, 0, None))
            continue
        gaps = np.diff(seg)
        cv = float(gaps.std() / gaps.mean()) if gaps.size > 1 and gaps.mean() > 0 else None
        best = None
        if fit and gaps.size >= min_gaps and np.count_nonzero(gaps) >= 3:
            step = max(1, seg.size // WINDOW_FIT_MAX)
            sub = seg if step == 1 else np.cumsum(gaps[::step])
            best = fit_arrivals(sub, with_stderr=False).best
        out.append(
            WindowFit(
                start_s=start,
                duration_s=max(dur, 1e-9),
                rate_per_s=seg.size / max(dur, 1e-9),
                cv=cv,
                count=int(seg.size),
                fit=best,
            )
        )
    return out


def windows_frame(windows: Sequence[WindowFit]) -> pl.DataFrame:
    """`window_fits` as a table: start_s, duration_s, count, rate_per_s, cv, family, params."""
    return pl.DataFrame(
        [
            {
                "start_s": w.start_s,
                "duration_s": w.duration_s,
                "count": w.count,
                "rate_per_s": w.rate_per_s,
                "cv": w.cv,
                "family": w.fit.family if w.fit else None,
                "params": str({k: round(v, 4) for k, v in w.fit.params.items()}) if w.fit else None,
            }
            for w in windows
        ]
    )


@dataclass
class Burstiness:
    """Analytics of one arrival process (one group)."""

    group: str | None
    n: int
    duration_s: float
    rate_per_s: float
    cv: float
    hurst: float
    peak_to_mean: float
    peak_to_trough: float | None
    dispersion: pl.DataFrame
    acf: np.ndarray
    windows: list[WindowFit] = field(default_factory=list)
    decomposition: RateDecomposition | None = None
    rate_window_s: float = 60.0
    resolution_s: float | None = None  # timestamp grid; dispersion is measured from it up

    def idc_at(self, window_s: float) -> float | None:
        """The dispersion curve's value at one scale (None when not measured)."""
        row = self.dispersion.filter(pl.col("window_s") == window_s)
        return None if row.is_empty() else float(row["idc"][0])

    def row(self) -> dict:
        """One summary row (the `burstlab burstiness` table)."""
        out = {
            "group": self.group,
            "requests": self.n,
            "resolution_s": self.resolution_s,
            "duration_s": self.duration_s,
            "rate_per_s": self.rate_per_s,
            "iat_cv": self.cv,
        }
        for w in FIDELITY_SCALES:
            out[f"idc_{w:g}s"] = self.idc_at(w)
        out.update(
            {
                "acf1_1s": float(self.acf[1]) if self.acf.size > 1 else None,
                "hurst": self.hurst,
                "peak_to_mean": self.peak_to_mean,
                "peak_to_trough": self.peak_to_trough,
                "seasonal_strength": (
                    self.decomposition.seasonal_strength if self.decomposition else None
                ),
            }
        )
        return out


def analyse(
    t: np.ndarray,
    group: str | None = None,
    window_s: float = 600.0,
    rate_window_s: float = 60.0,
    fit_windows: bool = True,
) -> Burstiness:
    """All burstiness analytics of one sorted array of arrival times (seconds)."""
    window_s = positive_param(window_s, "window_s")
    rate_window_s = positive_param(rate_window_s, "rate_window_s")
    t = sorted_times(t)
    duration = float(t[-1] - t[0]) if t.size > 1 else 0.0
    gaps = np.diff(t)
    cv = float(gaps.std() / gaps.mean()) if gaps.size > 1 and gaps.mean() > 0 else math.nan
    windows, total, _, top, low = count_moments(t, rate_window_s)
    if windows:
        peak, mean = top / rate_window_s, total / windows / rate_window_s
        trough = low / rate_window_s
        p2m = peak / mean if mean > 0 else math.nan
        p2t = peak / trough if trough > 0 else None
    else:
        p2m, p2t = math.nan, None
    resolution = detect_resolution(t).resolution_s
    scales = default_scales(duration)
    if resolution:
        # near the timestamp grid, counts only show the quantisation (Mooncake's 3-s buckets
        # put whole bursts into one instant): measure from three grid steps up
        scales = [s for s in scales if s >= 3 * resolution * (1 - 1e-3)]
    return Burstiness(
        group=group,
        n=int(t.size),
        duration_s=duration,
        rate_per_s=t.size / duration if duration > 0 else math.nan,
        cv=cv,
        hurst=hurst_aggvar(t, max(1.0, resolution or 1.0)),
        peak_to_mean=p2m,
        peak_to_trough=p2t,
        dispersion=dispersion_curve(t, scales),
        acf=count_acf(t, max(1.0, resolution or 1.0)),
        windows=window_fits(t, window_s, fit=fit_windows),
        decomposition=decompose_rate(t),
        rate_window_s=rate_window_s,
        resolution_s=resolution,
    )


@dataclass
class BurstinessReport(Result):
    """Analytics per group; ``table()`` is the one-row-per-group summary, ``summary()`` the
    same turned to one column per group (Poisson: iat_cv = idc = 1, hurst = 0.5) with the
    dispersion curve, ``to_dict()`` both as plain data."""

    by: str | None
    groups: list[Burstiness]

    def table(self) -> pl.DataFrame:
        return pl.DataFrame([g.row() for g in self.groups])

    def statistics(self) -> pl.DataFrame:
        """One row per statistic, one column per group (statistics no group has are left out)."""
        table = self.table()
        names = [str(g) for g in table["group"]]
        stats = [c for c in table.columns if c != "group" and table[c].null_count() < table.height]
        return pl.DataFrame(
            {"statistic": stats, **{g: [table[c][i] for c in stats] for i, g in enumerate(names)}},
            strict=False,
        )

    def summary(self) -> Summary:
        first = self.groups[0]
        title = f"burstiness of {first.n:,} arrivals over {first.duration_s:,.0f} s" + (
            f", by {self.by}" if self.by else ""
        )
        s = Summary(title).add(
            "statistics (Poisson: iat_cv = idc = 1, hurst = 0.5)", self.statistics()
        )
        return s.add("index of dispersion by window", self.dispersion())

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "groups": self.table().to_dicts(),
            "dispersion": self.dispersion().to_dicts(),
        }

    def dispersion(self) -> pl.DataFrame:
        """All dispersion curves, long format with a ``group`` column."""
        return pl.concat(
            [g.dispersion.with_columns(pl.lit(g.group).alias("group")) for g in self.groups]
        )


def burstiness(
    frame: pl.DataFrame | pl.LazyFrame,
    by: str | None = None,
    *,
    column: str = "arrival_s",
    window_s: float = 600.0,
    fit_windows: bool = True,
    min_rows: int = 20,
) -> BurstinessReport:
    """Burstiness analytics of a canonical table, overall and per value of column ``by``.

    Groups with fewer than ``min_rows`` arrivals are skipped (their curves are noise).
    """
    lf = frame.lazy()
    out = [analyse(arrival_times(lf, column), "all", window_s, fit_windows=fit_windows)]
    if by is not None:
        names = lf.collect_schema().names()
        if by not in names:
            raise SchemaError(f"cannot group by {by!r}: the table has columns {names}")
        parts = lf.select(pl.col(by), pl.col(column)).collect().partition_by(by, as_dict=True)
        for key, part in sorted(parts.items(), key=lambda kv: str(kv[0])):
            if part.height >= min_rows:
                t = np.sort(part[column].drop_nulls().to_numpy())
                out.append(analyse(t, str(key[0]), window_s, fit_windows=fit_windows))
    return BurstinessReport(by, out)
