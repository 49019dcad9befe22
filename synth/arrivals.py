"""Arrival times, vectorised: unit-rate renewal processes time-changed by an intensity curve.

Why this construction: a renewal process fitted to inter-arrival times alone under-states
dispersion at 10–300 s by 4–30× on real traces (docs/design.md §4), because real load is
non-stationary. So the generator draws a *unit-rate* renewal process (the short-range shape of
the gaps) and maps it through the inverse of the cumulative intensity Λ(t) = ∫ λ, where λ is
the spec's rate curve times the burst regime's level (a simulated Markov chain). A rate scale
multiplies λ, so bursts stay bursts at any load instead of time being merely compressed.

Times are seconds from the workload start; rates are requests per second.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from burstlab import distributions as dist
from burstlab.errors import SpecError, UsageError
from burstlab.spec import ArrivalSpec, BurstRegime, EmpiricalDist, FamilyFit, RateCurve
from burstlab.synth.parallel import map_chunks, map_ranges

#: At most this many requests per call: 2**31 requests hold ~50 GB of columns, so more is a
#: mistake in the knobs (duration × rate scale × speedup), refused before anything is drawn.
MAX_REQUESTS = 1 << 31
#: At most this many steps of the intensity grid (one per burst-regime or rate-curve window
#: over ``duration_s × speedup``): 2**24 five-second windows are 2.6 years of workload.
MAX_STEPS = 1 << 24
#: At most this many window visits of the ``windowed`` model per call (a Python step each):
#: 2**20 ten-minute windows are 20 years.
MAX_WINDOW_VISITS = 1 << 20
#: The unit renewal draws at most this many times the expected number of gaps; a gap law
#: whose draws still sum short of the horizon is too heavy-tailed to set a rate.
MAX_DRAW_FACTOR = 64


def check_count(expected: float) -> None:
    """UsageError when a call would generate more than `MAX_REQUESTS` requests (expected)."""
    if not expected <= MAX_REQUESTS:
        raise UsageError(
            f"the knobs ask for about {expected:.3g} requests, more than the "
            f"{MAX_REQUESTS:,} one call generates (lower duration_s × rate_scale × speedup)",
            param="duration_s",
        )


def gap_mean(gaps: FamilyFit) -> float:
    """Mean gap (seconds) of a gap law; UsageError when it has no finite mean (a validated
    spec never holds such a gap law: `burstlab.spec_checks`)."""
    return dist.finite_mean(gaps.family, gaps.params)


def unit_renewal(rng: np.random.Generator, gaps: FamilyFit, horizon: float) -> np.ndarray:
    """Points of a unit-rate renewal process on [0, horizon) (operational time).

    Gaps are `gaps` draws (`distributions.sample`) divided by its mean. The first point is a uniform fraction of a
    first gap, so the process starts near equilibrium rather than with an arrival at 0. Gaps
    are drawn in one batch sized for the expected count plus a margin, topped up if short.
    """
    if horizon <= 0:
        return np.zeros(0)
    check_count(horizon)
    mean = gap_mean(gaps)
    chunks: list[np.ndarray] = []
    t = 0.0
    drawn = 0
    while t < horizon:
        if drawn > MAX_DRAW_FACTOR * horizon + 1e6:
            raise SpecError(
                f"gaps of {gaps.family} {gaps.params} are too heavy-tailed to generate: "
                f"{drawn:,} draws ÷ their mean cover {t / horizon:.3g} of the "
                f"{horizon:.3g} expected (a finite mean that samples never reach)"
            )
        remaining = horizon - t
        n = int(remaining * 1.05 + 8.0 * math.sqrt(remaining) + 64)
        g = np.concatenate(map_chunks(rng, n, lambda sub, a, b: gaps.sample(sub, b - a)))
        g /= mean
        if not chunks:
            g[0] *= rng.random()
        pts = np.cumsum(g)
        pts += t
        chunks.append(pts)
        drawn += pts.size
        t = float(pts[-1])
    pts = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    return pts[: np.searchsorted(pts, horizon, side="left")]


def time_change(unit_points: np.ndarray, rates: np.ndarray, step_s: float) -> np.ndarray:
    """Map unit-rate points through Λ⁻¹ for a piecewise-constant intensity: `rates[i]`
    requests/s on [i·step_s, (i+1)·step_s). Points beyond the total intensity are dropped;
    windows with rate 0 receive no arrivals."""
    rates = np.asarray(rates, dtype=np.float64)
    edges = np.arange(rates.size + 1, dtype=np.float64) * step_s
    cum = np.concatenate([[0.0], np.cumsum(rates * step_s)])
    pts = unit_points[: np.searchsorted(unit_points, cum[-1], side="left")]  # sorted: a view
    out = np.empty_like(pts)

    def fill(a: int, b: int) -> None:
        # The points are sorted, so locate the few window boundaries among them and repeat
        # each window's index over its run (O(n), no search per point). A point on a flat
        # step (zero-rate windows) lands in the last window of the step, which has a
        # positive rate, so quiet windows stay empty.
        chunk = pts[a:b]
        idx = np.repeat(np.arange(rates.size), np.diff(np.searchsorted(chunk, cum, side="left")))
        o = out[a:b]
        np.subtract(chunk, cum[idx], out=o)
        o /= rates[idx]
        o += edges[idx]

    map_ranges(pts.size, fill)
    return out


def regime_path(rng: np.random.Generator, regime: BurstRegime, n_windows: int) -> np.ndarray:
    """A simulated state sequence of the burst regime's Markov chain, one state per window.

    Window i > 0 moves from state s to the first j with u_i < Σ_{j' ≤ j} transition[s][j']
    (one uniform u_i per window). The walk is sequential; `bisect` on plain lists does a step
    in ~0.3 µs (a NumPy call per step costs ~1.7 µs), the same states as `np.searchsorted`."""
    cum_t = np.cumsum(np.asarray(regime.transition, dtype=np.float64), axis=1)
    cum_t[:, -1] = 1.0
    cum_0 = np.cumsum(regime.initial)
    cum_0[-1] = 1.0
    u = rng.random(max(n_windows, 1))
    if n_windows == 0:
        return np.empty(0, dtype=np.int64)
    s = int(np.searchsorted(cum_0, u[0], side="right"))
    rows = cum_t.tolist()
    states = [s] * n_windows
    step = bisect.bisect_right
    for i, ui in enumerate(u[1:n_windows].tolist(), 1):
        s = step(rows[s], ui)
        states[i] = s
    return np.array(states, dtype=np.int64)


def intensity(
    rng: np.random.Generator,
    curve: RateCurve,
    regime: BurstRegime | None,
    duration_s: float,
    rate_scale: float = 1.0,
) -> tuple[np.ndarray, float]:
    """The intensity λ (requests/s) on a grid of step `step_s` covering [0, duration_s):
    the rate curve (cycled) × the simulated regime level × `rate_scale`. UsageError beyond
    `MAX_STEPS` steps."""
    step = curve.window_s if regime is None else min(curve.window_s, regime.window_s)
    steps = duration_s / step - 1e-9
    if not steps <= MAX_STEPS:
        raise UsageError(
            f"{duration_s:.6g} s of modulated arrivals (duration_s × speedup) take "
            f"{steps:.3g} windows of the spec's {step:g} s; at most {MAX_STEPS:,}",
            param="duration_s",
        )
    n = max(1, math.ceil(steps))
    mid = (np.arange(n) + 0.5) * step
    lam = curve.rate_at(mid + curve.start_s) * rate_scale
    if regime is not None:
        cell = np.floor(mid / regime.window_s).astype(np.int64)
        states = regime_path(rng, regime, int(cell[-1]) + 1)
        lam = lam * np.asarray(regime.levels, dtype=np.float64)[states[cell]]
    return lam, step


def mean_rate(spec: ArrivalSpec) -> float:
    """Long-run mean arrival rate (requests/s) of an ArrivalSpec before any rate scale."""
    if spec.model == "modulated" and spec.rate_curve is not None:
        return spec.rate_curve.mean_rate()
    if spec.model == "windowed" and spec.windows:
        total = sum(w.duration_s for w in spec.windows)
        return sum(w.rate_per_s * w.duration_s for w in spec.windows) / total
    return 1.0 / gap_mean(spec.renewal)


def _within_gaps(spec: ArrivalSpec) -> FamilyFit:
    return spec.burst_regime.within if spec.burst_regime is not None else spec.renewal


def arrival_times(
    spec: ArrivalSpec, rng: np.random.Generator, duration_s: float, rate_scale: float = 1.0
) -> np.ndarray:
    """Sorted arrival times (seconds) on [0, duration_s) from an ArrivalSpec.

    - ``renewal``: stationary renewal with the fitted gaps, rate × `rate_scale`.
    - ``modulated``: unit renewal of the regime's within-window gaps, through Λ⁻¹ of
      rate curve × regime level × `rate_scale`.
    - ``windowed``: each fitted window (cycled) is its own renewal process at its rate.
    """
    if rate_scale <= 0:
        raise UsageError(f"rate scale must be > 0, found {rate_scale}", param="rate_scale")
    if spec.model == "renewal":
        rate = rate_scale / gap_mean(spec.renewal)
        return unit_renewal(rng, spec.renewal, rate * duration_s) / rate
    if spec.model == "modulated":
        if spec.gap_shape == "real-time" and spec.gap_law is not None:
            return _real_time_gaps(spec, spec.gap_law, rng, duration_s, rate_scale)
        return _modulated(spec, rng, duration_s, rate_scale)
    if spec.model == "windowed":
        return _windowed(spec, rng, duration_s, rate_scale)
    raise SpecError(f"unknown arrival model {spec.model!r}")


def _modulated(
    spec: ArrivalSpec, rng: np.random.Generator, duration_s: float, rate_scale: float
) -> np.ndarray:
    if spec.rate_curve is None:
        raise SpecError("arrival model 'modulated' needs a rate curve")
    lam, step = intensity(rng, spec.rate_curve, spec.burst_regime, duration_s, rate_scale)
    # Λ(duration_s): the last grid step may reach past the duration, and draws there are waste
    horizon = float(lam[:-1].sum() * step + lam[-1] * (duration_s - (lam.size - 1) * step))
    t = time_change(unit_renewal(rng, _within_gaps(spec), horizon), lam, step)
    return t[t < duration_s]


#: The real-time shape draws the modulated process this much longer than asked, so that the
#: re-valued gaps (whose sum is random) still cover the whole duration.
REAL_TIME_MARGIN = 1.25


def _real_time_gaps(
    spec: ArrivalSpec,
    gap_law: EmpiricalDist,
    rng: np.random.Generator,
    duration_s: float,
    rate_scale: float,
) -> np.ndarray:
    """The ``real-time`` gap shape: the modulated process decides the ORDER of the gaps (short
    ones where the regime is busy, long ones where it is quiet) and the values are draws from
    the real-time gap law (seconds, ÷ `rate_scale`), assigned by rank — the k-th shortest
    time-warped gap gets the k-th shortest draw. The gap marginal is then the source's own
    (a near-fixed cadence survives), while busy and quiet stretches stay where the regime put
    them. Cost: one argsort of the n warped gaps (the draws come out sorted)."""
    horizon = duration_s * REAL_TIME_MARGIN
    while True:
        warped = _modulated(spec, rng, horizon, rate_scale)
        gaps = np.diff(warped, prepend=0.0)
        values = dist.sorted_draws(gap_law, gaps.size, rng) / rate_scale
        out = np.empty_like(gaps)
        out[np.argsort(gaps)] = values  # equal warped gaps get equal-ranked draws: any order
        t = np.cumsum(out)
        if t.size == 0 or t[-1] >= duration_s or horizon > 64 * duration_s:
            return t[t < duration_s]
        horizon *= 2.0  # the draws summed short of the duration: draw a longer stretch


def _windowed(
    spec: ArrivalSpec, rng: np.random.Generator, duration_s: float, rate_scale: float
) -> np.ndarray:
    """ServeGen-style windows, each a renewal process (not a fixed count spread in it)."""
    windows = spec.windows or []
    if not windows:
        raise SpecError("arrival model 'windowed' needs at least one window")
    cycle = sum(w.duration_s for w in windows)
    visits = duration_s / cycle * len(windows)
    if not visits <= MAX_WINDOW_VISITS:
        raise UsageError(
            f"{duration_s:.6g} s of windowed arrivals (duration_s × speedup) visit {visits:.3g} "
            f"of the spec's windows; at most {MAX_WINDOW_VISITS:,}",
            param="duration_s",
        )
    out, t, i = [], 0.0, 0
    while t < duration_s:
        w = windows[i % len(windows)]
        length = min(w.duration_s, duration_s - t)
        rate = w.rate_per_s * rate_scale
        if rate > 0:
            gaps = w.fit or spec.renewal
            out.append(t + unit_renewal(rng, gaps, rate * length) / rate)
        t += w.duration_s
        i += 1
    return np.concatenate(out) if out else np.zeros(0)


def renewal_arrivals(
    rng: np.random.Generator, gaps: FamilyFit, rate_per_s: float, duration_s: float
) -> np.ndarray:
    """A stationary renewal process with `gaps`' shape at `rate_per_s` on [0, duration_s)."""
    return unit_renewal(rng, gaps, rate_per_s * duration_s) / rate_per_s
