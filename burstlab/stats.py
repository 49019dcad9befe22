"""Shared statistics of arrival processes: the numbers fitting estimates from and synth's
fidelity suite compares with, computed by one routine each so the two can never disagree.

- `window_counts`: arrivals per window; `dispersion_index` (IDC at one scale),
  `dispersion_curve` (IDC over `default_scales`), `count_acf` (ACF of window counts);
- `busy_windows`: request count and mean length of each non-empty window (load vs length);
- `sorted_times`: arrival times as sorted float64 without re-sorting sorted data;
- `n_windows`, `count_moments`: the size and moments of a count series without materialising
  it (sparse traces: a few arrivals over a span of billions of windows).

`FIDELITY_SCALES` are the count-window widths the fidelity suite compares (docs/design.md §4).
Times are seconds, lengths tokens. No pipeline stage is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl


def sorted_times(arrival_s: np.ndarray | Sequence[float]) -> np.ndarray:
    """Arrival times as sorted float64, without re-sorting data that is already in order
    (sorting 10 M already-sorted values costs seconds; checking order costs milliseconds)."""
    t = np.asarray(arrival_s, dtype=np.float64)
    return t if t.size < 2 or bool(np.all(t[1:] >= t[:-1])) else np.sort(t)


#: Scales the fidelity suite compares (docs/design.md §4), always included in the curve.
FIDELITY_SCALES = (0.1, 1.0, 10.0, 60.0, 300.0)
#: A dispersion scale is reported only when the trace holds at least this many windows of it.
MIN_WINDOWS = 10


def window_counts(
    t: np.ndarray, window_s: float, start_s: float | None = None, end_s: float | None = None
) -> np.ndarray:
    """Arrivals per window of ``window_s`` seconds over the whole windows of
    [``start_s``, ``end_s``) — by default from the first to the last arrival. A partial last
    window is dropped so every count covers the same time; empty windows are kept (with an
    explicit ``end_s`` a quiet tail counts as zeros, it is part of the behaviour).

    The one window-count routine of the package: the burstiness analytics, the burst-regime
    fit and synth's fidelity suite all count with it."""
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0 and (start_s is None or end_s is None):
        return np.zeros(0, dtype=np.int64)
    t0 = float(t[0]) if start_s is None else float(start_s)
    t1 = float(t[-1]) if end_s is None else float(end_s)
    n = math.floor((t1 - t0) / window_s + 1e-9)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.floor((t - t0) / window_s).astype(np.int64)
    idx = idx[(idx >= 0) & (idx < n)]
    return np.bincount(idx, minlength=n)


#: A count series longer than this, or with more than `SPARSE_RATIO` windows per arrival, is
#: never materialised (`sparse`): the dispersion statistics are computed from the occupied
#: windows only (`count_moments`), and the statistics that need the whole series (`count_acf`,
#: the Hurst exponent) are not available (NaN). 2**24 one-second windows is 194 days; a span
#: of many more windows than arrivals is a sparse trace (or timestamps in the wrong unit),
#: whose dense series would not fit in memory, or would be almost all zeros.
MAX_DENSE_WINDOWS = 1 << 24
SPARSE_RATIO = 1024


def sparse(t: np.ndarray, windows: int) -> bool:
    """Is a count series of `windows` windows over the arrivals `t` too long or too empty to
    materialise (see `MAX_DENSE_WINDOWS`)?"""
    return windows > MAX_DENSE_WINDOWS or windows > SPARSE_RATIO * max(np.size(t), 1)


def n_windows(
    t: np.ndarray, window_s: float, start_s: float | None = None, end_s: float | None = None
) -> int:
    """How many whole windows `window_counts` would return (without counting anything)."""
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0 and (start_s is None or end_s is None):
        return 0
    t0 = float(t[0]) if start_s is None else float(start_s)
    t1 = float(t[-1]) if end_s is None else float(end_s)
    span = (t1 - t0) / window_s + 1e-9
    return max(math.floor(span), 0) if math.isfinite(span) else 0


def count_moments(
    t: np.ndarray, window_s: float, start_s: float | None = None, end_s: float | None = None
) -> tuple[int, float, float, float, float]:
    """(windows, Σc, Σc², max c, min c) of the `window_counts` c, without materialising the
    series when it is longer than `MAX_DENSE_WINDOWS` or `SPARSE_RATIO` × the arrivals (then
    only occupied windows are tallied and the empty ones enter as zeros). `t` must be sorted."""
    n = n_windows(t, window_s, start_s, end_s)
    if n <= 0:
        return 0, 0.0, 0.0, 0.0, 0.0
    if not sparse(t, n):
        c = window_counts(t, window_s, start_s, end_s).astype(np.float64)
        return n, float(c.sum()), float(np.dot(c, c)), float(c.max()), float(c.min())
    t = np.asarray(t, dtype=np.float64)
    t0 = float(t[0]) if start_s is None else float(start_s)
    idx = np.floor((t - t0) / window_s).astype(np.int64)
    idx = idx[(idx >= 0) & (idx < n)]
    if idx.size == 0:
        return n, 0.0, 0.0, 0.0, 0.0
    cuts = np.flatnonzero(np.diff(idx)) + 1
    c = np.diff(np.concatenate(([0], cuts, [idx.size]))).astype(np.float64)
    low = float(c.min()) if c.size == n else 0.0
    return n, float(c.sum()), float(np.dot(c, c)), float(c.max()), low


def _idc(n: int, total: float, sumsq: float) -> float:
    """Var(ddof=1) ÷ mean of n counts with sum `total` and sum of squares `sumsq`."""
    if n < 2 or total <= 0:
        return math.nan
    mean = total / n
    return max(sumsq - total * mean, 0.0) / (n - 1) / mean


def dispersion_index(
    t: np.ndarray, window_s: float, start_s: float | None = None, end_s: float | None = None
) -> float:
    """IDC at one scale: Var ÷ mean of the `window_counts` (1 for Poisson; > 1 bursty).

    NaN with fewer than two windows or no arrivals: the statistic does not exist there."""
    if sparse(t, n_windows(t, window_s, start_s, end_s)):
        n, total, sumsq, _, _ = count_moments(sorted_times(t), window_s, start_s, end_s)
        return _idc(n, total, sumsq)
    c = window_counts(t, window_s, start_s, end_s)
    if c.size < 2 or c.sum() == 0:
        return math.nan
    return float(c.var(ddof=1) / c.mean())


def default_scales(duration_s: float) -> list[float]:
    """0.1 s … 1 h on a 1-2-5 grid plus the fidelity scales, keeping ≥ `MIN_WINDOWS` windows."""
    grid = sorted(
        {round(m * 10.0**e, 6) for e in range(-1, 4) for m in (1, 2, 5)}
        | {3600.0}
        | set(FIDELITY_SCALES)
        | {30.0, 600.0, 1800.0}
    )
    return [s for s in grid if s <= 3600.0 and duration_s / s >= MIN_WINDOWS]


def dispersion_curve(t: np.ndarray, scales: Sequence[float] | None = None) -> pl.DataFrame:
    """IDC(T) = Var/mean of counts in windows of T seconds, for each scale T.

    Columns: ``window_s, windows, mean, var, idc``. A Poisson process has idc ≈ 1 at every
    scale; a renewal process ≈ CV² at large T; real traces grow with T.
    """
    t = np.asarray(t, dtype=np.float64)
    duration = float(t[-1] - t[0]) if t.size else 0.0
    rows = []
    for w in scales if scales is not None else default_scales(duration):
        if sparse(t, n_windows(t, w)):  # a sparse trace: moments of the occupied windows
            n, total, sumsq, _, _ = count_moments(sorted_times(t), w)
            mean = total / n
            var = max(sumsq - total * mean, 0.0) / (n - 1)
            rows.append(
                {
                    "window_s": float(w),
                    "windows": n,
                    "mean": mean,
                    "var": var,
                    "idc": var / mean if mean > 0 else math.nan,
                }
            )
            continue
        c = window_counts(t, w)
        if c.size < 2:
            continue
        mean = float(c.mean())
        var = float(c.var(ddof=1))
        rows.append(
            {
                "window_s": float(w),
                "windows": int(c.size),
                "mean": mean,
                "var": var,
                "idc": var / mean if mean > 0 else math.nan,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "window_s": pl.Float64,
            "windows": pl.Int64,
            "mean": pl.Float64,
            "var": pl.Float64,
            "idc": pl.Float64,
        },
    )


def count_acf(
    t: np.ndarray,
    window_s: float = 1.0,
    nlags: int = 60,
    start_s: float | None = None,
    end_s: float | None = None,
) -> np.ndarray:
    """Autocorrelation of counts in ``window_s`` windows at lags 0…nlags (statsmodels acf:
    the biased estimator normalised by the lag-0 variance, so it stays in [-1, 1]). All NaN
    when there are too few windows, the counts are constant, or the series is `sparse`."""
    from statsmodels.tsa.stattools import acf  # heavy (~0.4 s): not at import

    if sparse(t, n_windows(t, window_s, start_s, end_s)):
        return np.full(nlags + 1, np.nan)  # too long or too empty a series (a sparse trace)
    c = window_counts(t, window_s, start_s, end_s).astype(np.float64)
    if c.size <= nlags + 1 or np.all(c == c[0]):
        return np.full(nlags + 1, np.nan)
    return np.asarray(acf(c, nlags=nlags, fft=True))


def busy_windows(
    arrival_s: np.ndarray,
    lengths: np.ndarray,
    window_s: float,
    start_s: float | None = None,
    end_s: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Request count and mean length (tokens) of each non-empty `window_s`-second window
    from `start_s` (default: the first arrival); with `end_s`, only the whole windows before
    it. The one load-vs-length tally: `load_coupling` fits on it and synth's fidelity suite
    compares with it."""
    t = np.asarray(arrival_s, dtype=np.float64)
    y = np.asarray(lengths, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0), np.zeros(0)
    t0 = float(t.min()) if start_s is None else float(start_s)
    idx = np.floor((t - t0) / window_s).astype(np.int64)
    keep = idx >= 0
    if end_s is not None:
        keep &= idx < math.floor((float(end_s) - t0) / window_s + 1e-9)
    idx, y = idx[keep], y[keep]
    if idx.size and int(idx.max()) > MAX_DENSE_WINDOWS + 4 * idx.size:
        # a sparse trace (few arrivals over very many windows): tally the occupied ones only
        _, inverse = np.unique(idx, return_inverse=True)
        c = np.bincount(inverse)
        s = np.bincount(inverse, weights=y)
        return c.astype(np.float64), s / c
    c = np.bincount(idx)
    s = np.bincount(idx, weights=y)
    busy = c > 0
    return c[busy].astype(np.float64), s[busy] / c[busy]
