"""The real-time gap law: the empirical distribution of inter-arrival gaps, in seconds.

Why: some clients send on a near-fixed cadence. On the Azure 2023 code trace 28 % of gaps lie
in 0.07–0.13 s and 24 % are under 2 ms (pairs sent together). A burst regime that time-warps
a unit-rate renewal through Λ⁻¹ stretches every gap by the local rate and smears the cadence
out (inter-arrival KS 0.16–0.19 against the held-out hour, real envelope ≤ 0.085–0.11); a
renewal process keeps the gap shape but loses the dispersion. The ``real-time`` gap shape of
the modulated model keeps both: the regime orders the gaps, this law gives their values.

The law is a log-space histogram (``EmpiricalDist``) of the positive gaps plus a point mass
at 0 for exact ties — it follows the data as closely as the length marginals do. Because an
empirical law scored on the gaps it was built from is near-perfect by construction, its
goodness of fit is measured out of sample (`cross_ks`): built on one half of the training
period, scored on the other half, both ways.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from burstlab.spec import EmpiricalDist, PointMass

#: Histogram bins per decade of gap length (2 % steps: finer than any cadence jitter seen).
BINS_PER_DECADE = 40
#: A gap law needs this many positive gaps.
MIN_GAPS = 200
#: `cross_ks` scores at most this many gaps per half (the CDF is evaluated per bin).
KS_MAX = 20_000


def gap_law(gaps_s: np.ndarray, per_decade: int = BINS_PER_DECADE) -> EmpiricalDist | None:
    """Log-space histogram of the positive gaps (seconds) with a point mass at 0 for ties.

    None with fewer than `MIN_GAPS` positive gaps (too few to be a law)."""
    g = np.asarray(gaps_s, dtype=np.float64)
    pos = g[g > 0]
    if pos.size < MIN_GAPS:
        return None
    lo, hi = float(pos.min()), float(pos.max())
    decades = max(math.log10(hi / lo), 1e-9)
    edges = np.geomspace(lo, hi * (1 + 1e-9), max(2, math.ceil(decades * per_decade)) + 1)
    probs = np.histogram(pos, bins=edges)[0] / g.size
    zero = float((g <= 0).sum()) / g.size
    masses = [PointMass(0.0, zero)] if zero > 0 else []
    return EmpiricalDist([float(e) for e in edges], [float(p) for p in probs], masses)


def law_cdf(law: EmpiricalDist, x: np.ndarray) -> np.ndarray:
    """CDF of a gap law at `x` (seconds), vectorised over the bins (log-linear inside a bin)."""
    edges = np.asarray(law.edges)
    cum = np.concatenate(([0.0], np.cumsum(law.probs)))
    zero = sum(m.prob for m in law.point_masses if m.value == 0.0)
    lx = np.log(np.clip(np.asarray(x, dtype=np.float64), edges[0], edges[-1]))
    inside = np.interp(lx, np.log(edges), cum)
    return np.where(np.asarray(x) < 0, 0.0, zero + inside)


def law_ppf(law: EmpiricalDist, u: np.ndarray) -> np.ndarray:
    """Inverse CDF of a gap law at u ∈ [0, 1) (seconds): 0 below the tie mass, log-linear
    inside a bin. The same values as ``law.ppf`` for a law `gap_law` built (one atom at 0,
    contiguous bins), ~10× faster (one np.interp), which matters at 20 M gaps."""
    cum = np.concatenate(([0.0], np.cumsum(law.probs)))
    zero = sum(m.prob for m in law.point_masses if m.value == 0.0)
    v = np.asarray(u, dtype=np.float64) - zero
    out = np.exp(np.interp(v, cum, np.log(np.asarray(law.edges))))
    out[v < 0] = 0.0
    return out


def sorted_draws(law: EmpiricalDist, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws from a gap law, in increasing order, without a sort: the order statistics of n
    uniforms are normalised cumulative sums of n + 1 exponentials, and the inverse CDF keeps
    the order (O(n) instead of O(n log n))."""
    e = np.cumsum(rng.exponential(size=n + 1))
    return law_ppf(law, e[:-1] / e[-1])


def cross_ks(t: np.ndarray, per_decade: int = BINS_PER_DECADE) -> float | None:
    """Out-of-sample KS distance of the gap law: built on the first half of the arrivals
    (by time), scored on the second half's gaps, and the other way round; the mean of the
    two. It includes how much the gap shape drifts within the trace, as a held-out window
    would. None when a half is too short for a law."""
    t = np.asarray(t, dtype=np.float64)
    mid = t.size // 2
    halves = (np.diff(t[:mid]), np.diff(t[mid:]))
    out = []
    for a, b in (halves, halves[::-1]):
        law = gap_law(a, per_decade)
        if law is None or b.size < 2:
            return None
        b = b[:: max(1, b.size // KS_MAX)]
        out.append(float(stats.kstest(b, lambda x, law=law: law_cdf(law, x)).statistic))
    return float(np.mean(out))
