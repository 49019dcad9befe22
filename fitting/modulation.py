"""The non-stationary arrival model: a rate curve times a hidden-Markov burst regime.

Why: a renewal process fitted to gaps alone is stationary, so its index of dispersion levels
off at ≈ CV² — on the Azure 2023 conversation trace that is ≈ 1.2, while the real counts reach
16 at 60 s and 60 at 300 s. Real load has slow swings (a rate curve) and bursts that last tens
of seconds to minutes (a regime). The model here:

    λ(t) = rate_curve(t) · levels[state(t)],

with state(t) constant over windows of ``window_s`` and following a Markov chain. It is fitted
as a Poisson hidden Markov model on windowed counts — count_w ~ Poisson(e_w · level_s) with
exposure e_w = rate_curve(t_w) · window_s — by EM (Baum–Welch with scaled forward–backward),
for 1…4 states, choosing the number of states by BIC. Within the fitted intensity, the gaps in
operational time τ = Λ(t) = ∫λ get their own unit-mean renewal family (``within``), so the
short-range shape of the gaps is not counted twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from burstlab.errors import FitError, UsageError
from burstlab.fitting.arrivals import ArrivalFit, fit_arrivals, positive_param
from burstlab.fitting.dispersion import LogARFit, chain_autocov, fit_log_ar, implied_idc
from burstlab.fitting.hmm import HMMFit, fit_poisson_hmm
from burstlab.results import Result, Summary
from burstlab.spec import (
    ArrivalSpec,
    BurstRegime,
    FamilyFit,
    FitDiagnostics,
    RateCurve,
)
from burstlab.stats import dispersion_curve, sorted_times, window_counts

#: The EM forward–backward is a Python loop over windows; keep it to this many windows by
#: widening the burst window on long traces.
MAX_WINDOWS = 6000


@dataclass
class RegimeCandidate:
    """One candidate burst regime with the model check that chooses among them."""

    kind: str  # "poisson-hmm" (k states, ML) or "log-ar" (two AR(1) log-rates, IDC match)
    levels: np.ndarray
    transition: np.ndarray
    initial: np.ndarray
    stationary: np.ndarray
    implied_idc: np.ndarray  # at ModulationFit.scales
    idc_rms_log_error: float  # RMS of log(implied / empirical) over those scales
    hmm: HMMFit | None = None
    log_ar: LogARFit | None = None

    @property
    def label(self) -> str:
        if self.hmm is not None:
            return f"poisson-hmm k={self.hmm.k}"
        return f"log-ar {self.levels.size} states"


@dataclass
class ModulationFit(Result):
    """Rate curve + burst regime + within-regime gap family, with the audit of the choice.

    The Poisson HMMs are fitted by maximum likelihood (the number of states by BIC); the
    log-AR regime by matching the dispersion curve. Between the BIC-best HMM and the log-AR
    regime, the one whose *implied* dispersion curve is closer to the empirical one (RMS of
    the log ratio over scales from the burst window to a tenth of the trace) is chosen —
    reproducing dispersion at 10–300 s is the reason this model exists.
    """

    rate_curve: RateCurve
    window_s: float
    scales: np.ndarray
    empirical_idc: np.ndarray
    hmms: list[HMMFit]
    candidates: list[RegimeCandidate]
    chosen: RegimeCandidate
    within: ArrivalFit  # renewal fits of operational-time gaps (mean ≈ 1)
    span_s: float = 0.0  # length of the trace the empirical dispersion was measured on
    start_s: float = 0.0  # first arrival: burst window i covers start_s + [i, i+1)·window_s
    local_rate: np.ndarray | None = None  # fitted λ per burst window (curve · posterior level)

    def table(self) -> pl.DataFrame:
        """One row per candidate regime: kind, states, loglik/BIC (HMMs), IDC error, chosen."""
        rows = []
        for c in self.candidates:
            h = c.hmm
            rows.append(
                {
                    "regime": c.label,
                    "states": int(c.levels.size),
                    "loglik": h.loglik if h else None,
                    "bic": h.bic if h else None,
                    "idc_rms_log_error": c.idc_rms_log_error,
                    "level_min": float(c.levels.min()),
                    "level_max": float(c.levels.max()),
                    "chosen": c is self.chosen,
                }
            )
        return pl.DataFrame(rows)

    def summary(self) -> Summary:
        s = Summary(
            f"burst regime: {self.chosen.label} over {self.window_s:g}-s windows, rate curve of "
            f"{len(self.rate_curve.rates_per_s)} × {self.rate_curve.window_s:g} s"
        )
        return s.add("regime candidates (the dispersion match decides)", self.table())

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "chosen": self.chosen.label,
            "candidates": self.table().to_dicts(),
            "rate_curve": {
                "window_s": self.rate_curve.window_s,
                "rates_per_s": list(self.rate_curve.rates_per_s),
            },
        }

    def regime(self) -> BurstRegime:
        """The chosen regime as the spec's `BurstRegime` (levels with stationary mean 1)."""
        c = self.chosen
        pi = c.stationary
        levels = c.levels / float(np.dot(pi, c.levels))
        best = self.within.best
        within = best.rescaled(1.0 / best.mean())  # unit mean in operational time
        diag = None
        if c.hmm is not None:
            h = c.hmm
            diag = FitDiagnostics(h.n_windows, h.n_params, h.loglik, h.aic, h.bic)
        stay = np.clip(np.diag(c.transition), 0.0, 1.0 - 1e-12)
        return BurstRegime(
            window_s=self.window_s,
            levels=[float(x) for x in levels],
            transition=[[float(x) for x in row] for row in c.transition],
            initial=[float(x) for x in c.initial],
            within=within,
            kind=c.kind,
            diagnostics=diag,
            stationary=[float(x) for x in pi],
            mean_dwell_s=[float(self.window_s / (1 - p)) for p in stay],
        )

    def apply(self, arrivals: ArrivalSpec) -> ArrivalSpec:
        """``arrivals`` with the rate curve and burst regime added and ``model="modulated"``."""
        return ArrivalSpec(
            renewal=arrivals.renewal,
            candidates=arrivals.candidates,
            model="modulated",
            resolution_s=arrivals.resolution_s,
            rate_curve=self.rate_curve,
            burst_regime=self.regime(),
            windows=arrivals.windows,
        )


#: The default rate curve has at most this many windows (20,000 hours: 2.3 years); a longer
#: trace gets windows of a whole number of hours.
MAX_CURVE_WINDOWS = 20_000


def rate_curve(t: np.ndarray, window_s: float | None = None) -> RateCurve:
    """Mean rate per window from the first arrival. Default window: 1 h when the trace covers
    two days or more (a diurnal/weekly profile to cycle; k hours when 1 h would give more than
    `MAX_CURVE_WINDOWS`), else one window (a flat rate) — on a short trace any slower swing is
    left to the burst regime rather than replayed."""
    t = np.asarray(t, dtype=np.float64)
    duration = float(t[-1] - t[0])
    if window_s is None:
        window_s = 3600.0 if duration >= 2 * 86400 else max(duration, 1e-9)
        if duration / window_s > MAX_CURVE_WINDOWS:
            window_s *= math.ceil(duration / window_s / MAX_CURVE_WINDOWS)
    c = window_counts(t, window_s)
    if c.size == 0:
        return RateCurve(window_s=max(duration, 1e-9), rates_per_s=[t.size / max(duration, 1e-9)])
    return RateCurve(window_s=window_s, rates_per_s=[float(x) for x in c / window_s])


def default_burst_window(duration_s: float, mean_rate: float) -> float:
    """5 s, widened so a window expects ≥ 5 requests and the trace has ≤ `MAX_WINDOWS`, then
    rounded up to a whole number of seconds from (1, 2, 5)×10ᵏ so check scales divide it.

    Why 5 s: dispersion below the window comes from the within-regime gaps only; on the Azure
    2023 conversation trace 5-s windows reproduce the held-out IDC at 10–60 s within ~10 %,
    10-s windows only within ~50 %."""
    w = max(5.0, 5.0 / max(mean_rate, 1e-12), duration_s / MAX_WINDOWS)
    decade = 10.0 ** math.floor(math.log10(w))
    return float(next(m * decade for m in (1, 2, 5, 10) if m * decade >= w - 1e-9))


def fit_modulation(
    t: np.ndarray,
    *,
    window_s: float | None = None,
    curve_window_s: float | None = None,
    max_states: int = 4,
    resolution_s: float | None = None,
    seed: int = 0,
) -> ModulationFit:
    """Fit rate curve, Poisson-HMM burst regime (1…max_states by BIC) and within-gap family.

    ``t``: sorted arrival times (seconds). ``resolution_s``: a detected timestamp grid; the
    operational-time gaps are then computed after spreading each arrival uniformly inside its
    grid cell (seeded), since a 0 gap has no meaning in operational time. FitError when the
    trace spans fewer than two burst windows or no dispersion scale (nothing to fit on).
    """
    if window_s is not None:
        window_s = positive_param(window_s, "window_s")
    if curve_window_s is not None:
        curve_window_s = positive_param(curve_window_s, "curve_window_s")
    if isinstance(max_states, bool) or not isinstance(max_states, int) or max_states < 1:
        raise UsageError(f"must be an integer ≥ 1, found {max_states!r}", param="max_states")
    t = sorted_times(t)
    if t.size < 2:
        raise FitError(f"a burst regime needs at least 2 arrivals, found {t.size}")
    duration = float(t[-1] - t[0])
    curve = rate_curve(t, curve_window_s)
    w = window_s or default_burst_window(duration, t.size / max(duration, 1e-9))
    if resolution_s and not window_s:
        # a window must span several grid cells, else it only sees the quantisation
        w = resolution_s * max(5, math.ceil(w / resolution_s - 1e-9))
    counts = window_counts(t, w).astype(np.float64)
    if counts.size < 2:
        raise FitError(
            f"a burst regime needs at least 2 windows of {w:g} s; the trace spans {duration:g} s"
        )
    starts = float(t[0]) + w * np.arange(counts.size)
    expected = np.maximum(curve.rate_at(starts - float(t[0]) + curve.start_s) * w, 1e-12)
    hmms: list[HMMFit] = []
    for k in range(1, max_states + 1):
        hmms.append(fit_poisson_hmm(counts, expected, k))
        if k > 1 and hmms[-1].bic >= hmms[-2].bic:
            break  # BIC stopped improving: more states will not be chosen (and EM is slow)
    best_hmm = min(hmms, key=lambda h: h.bic)
    mean_rate = t.size / max(duration, 1e-9)
    top = min(duration / MIN_WINDOWS_FOR_SCALE, curve.window_s)
    scales = np.array([s for s in DISPERSION_SCALES if window_s_ok(s, w, top)], dtype=float)
    if scales.size == 0:
        scales = np.array([w])
    emp = dispersion_curve(t, list(scales))
    scales = emp["window_s"].to_numpy()
    empirical = emp["idc"].to_numpy()
    if scales.size == 0:
        raise FitError(f"no dispersion scale fits twice in the trace's {duration:g} s")
    span = w * counts.size  # the trace length the empirical curve was measured on
    candidates = [_hmm_candidate(best_hmm, mean_rate, w, scales, empirical, span)]
    if scales.size >= 4 and np.all(np.isfinite(empirical)):  # 4 parameters to fit
        ar = fit_log_ar(scales, empirical, mean_rate, w, span_s=span)
        candidates.append(_ar_candidate(ar, mean_rate, w, scales, empirical, span))
    chosen = min(candidates, key=lambda c: c.idc_rms_log_error)
    # operational time: λ per window = curve · posterior-mean level of the best HMM (the
    # local rate estimate), so the within-regime gaps are measured against the local rate
    post_level = best_hmm.posterior @ best_hmm.levels
    lam = expected / w * post_level
    if resolution_s:
        rng = np.random.default_rng(seed)
        t = np.sort(t + rng.random(t.size) * resolution_s)
    cum = np.concatenate(([0.0], np.cumsum(lam * w)))
    inside = (t >= t[0]) & (t < float(t[0]) + w * counts.size)
    tt = t[inside]
    idx = np.minimum(((tt - t[0]) / w).astype(np.int64), counts.size - 1)
    tau = cum[idx] + (tt - t[0] - idx * w) * lam[idx]
    within = fit_arrivals(np.sort(tau), resolution_s=None)
    return ModulationFit(
        curve, w, scales, empirical, hmms, candidates, chosen, within, span, float(t[0]), lam
    )


#: `operational_gap_ks` compares at most this many gaps (every k-th).
GAP_KS_MAX = 200_000


def operational_gap_ks(fit: ModulationFit, t: np.ndarray, seed: int = 0) -> float | None:
    """Two-sample KS distance between the trace's real-time gaps and the gaps the
    ``operational`` model implies at the same places: a draw from the unit-mean ``within``
    law divided by the fitted local rate where the gap starts (a plug-in, no simulation).

    This is what time-warping does to the gap shape: on a near-fixed-cadence client the
    stretched gaps no longer pile up at the cadence. None without the local rates."""
    if fit.local_rate is None:
        return None
    t = sorted_times(t)
    step = max(1, (t.size - 1) // GAP_KS_MAX)  # a KS distance needs no more; keeps fits fast
    starts = t[:-1][::step]
    gaps = np.diff(t)[::step]
    idx = np.floor((starts - fit.start_s) / fit.window_s).astype(np.int64)
    lam = fit.local_rate[np.clip(idx, 0, fit.local_rate.size - 1)]
    unit = fit.regime().within
    implied = unit.sample(np.random.default_rng(seed), gaps.size) / np.maximum(lam, 1e-12)
    # SciPy builds its result classes at run time: pyright sees no `statistic`
    return float(stats.ks_2samp(gaps, implied).statistic)  # pyright: ignore[reportAttributeAccessIssue]


#: The renewal model's dispersion is checked by simulation only up to this many arrivals.
RENEWAL_CHECK_MAX = 2_000_000


def renewal_idc(
    fit: FamilyFit, span_s: float, scales: np.ndarray, reps: int = 5, seed: int = 0
) -> np.ndarray | None:
    """Median sample IDC at ``scales`` of ``reps`` simulated renewal traces of ``span_s``
    seconds with gap law ``fit`` — a heavy-tailed gap law alone can reach real dispersion,
    so the stationary renewal model gets the same dispersion check as the regimes. None when
    a trace would exceed `RENEWAL_CHECK_MAX` arrivals."""
    mean = fit.mean()
    n = int(span_s / mean * 1.2) + 100
    if not math.isfinite(mean) or n > RENEWAL_CHECK_MAX:
        return None
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(reps):
        t = np.cumsum(fit.sample(rng, n))
        t = t[t < span_s]
        if t.size < 10:
            return None
        curves.append(dispersion_curve(t, list(scales))["idc"].to_numpy())
    if any(c.size != scales.size for c in curves):
        return None
    return np.median(np.vstack(curves), axis=0)


def renewal_idc_error(fit: ModulationFit, renewal: FamilyFit, seed: int = 0) -> float | None:
    """RMS log error of the renewal model's simulated dispersion against the trace's
    (comparable with `RegimeCandidate.idc_rms_log_error`)."""
    pred = renewal_idc(renewal, fit.span_s, fit.scales, seed=seed)
    return None if pred is None else _score(pred, fit.empirical_idc)


#: Candidate scales for the dispersion model check (seconds).
DISPERSION_SCALES = (
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
    3600.0,
)
#: A scale is used only if the trace holds this many windows of it.
MIN_WINDOWS_FOR_SCALE = 10


def window_s_ok(scale: float, window_s: float, top: float) -> bool:
    """A check scale must be a whole multiple of the burst window and ≤ top."""
    m = scale / window_s
    return scale <= top and m >= 1 and abs(m - round(m)) < 1e-2


def _score(pred: np.ndarray, empirical: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.log(np.maximum(pred, 1e-9) / empirical)) ** 2)))


def _hmm_candidate(h: HMMFit, rate: float, w: float, scales, empirical, span) -> RegimeCandidate:
    pi = h.stationary()
    lags = round(max(scales.max(), span) / w) + 1
    acv = chain_autocov(h.levels, h.transition, pi, lags)
    pred = implied_idc(acv, rate, w, scales, span_s=span)
    return RegimeCandidate(
        "poisson-hmm",
        h.levels,
        h.transition,
        h.initial,
        pi,
        pred,
        _score(pred, empirical),
        hmm=h,
    )


def _ar_candidate(ar: LogARFit, rate: float, w: float, scales, empirical, span) -> RegimeCandidate:
    lags = round(max(scales.max(), span) / w) + 1
    acv = chain_autocov(ar.levels, ar.transition, ar.stationary, lags)
    pred = implied_idc(acv, rate, w, scales, span_s=span)
    return RegimeCandidate(
        "log-ar",
        ar.levels,
        ar.transition,
        ar.stationary.copy(),
        ar.stationary,
        pred,
        _score(pred, empirical),
        log_ar=ar,
    )
