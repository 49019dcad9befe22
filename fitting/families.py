"""Positive continuous families (exponential, gamma, Weibull, lognormal) as fast likelihood math.

Why not ``scipy.stats.<dist>.fit``: it frees ``loc`` unless told not to (which breaks on
inter-arrival times), cannot fix the mean, cannot take interval-censored data, and on 10 M
values costs minutes. Here each family is a handful of vectorised formulas over a `Sample`
(values with weights), so one fit on 10 M gaps takes milliseconds once the sample is reduced.

Parameters use SciPy's names (`burstlab.distributions.FAMILIES`), always with ``loc = 0``; the
closed-form CDF, survival function and scale-1 mean of the four families (and the conversions
between SciPy parameters and (shape, scale)) are the distribution core's
(`burstlab.distributions`), shared with the spec and synth. What stays here is likelihood
math: sufficient statistics, log-likelihoods, MLEs, the interval-censored grid likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.optimize as opt
import scipy.special as sp

from burstlab.distributions import positive_cdf, positive_sf, scale_one_mean
from burstlab.errors import FitError, UsageError

#: Above this many values, continuous data are reduced to log-space bins (see `Sample.of`).
EXACT_LIMIT = 200_000
#: Log-space bins for large continuous samples: bin width ≈ range/65,536 in log(x), so the
#: within-bin error of Σxᶜ is ≈ c²δ²/24 < 1e-7 relative for realistic ranges.
LOG_BINS = 1 << 16


@dataclass(frozen=True)
class Sample:
    """Positive values ``x`` with weights ``w`` (counts), plus exact sufficient statistics.

    ``n``, ``sum_x``, ``sum_log`` and ``sum_log2`` are computed from the raw values, so the
    exponential, gamma and lognormal fits are exact even when ``x`` holds bin representatives.
    ``binned`` says whether ``x`` are log-space bin representatives (mean log of the bin).
    """

    x: np.ndarray
    w: np.ndarray
    n: float
    sum_x: float
    sum_log: float
    sum_log2: float
    binned: bool = False
    edges: np.ndarray | None = None  # bin edges (len(x) + 1) when binned

    @property
    def mean(self) -> float:
        return self.sum_x / self.n

    @property
    def mean_log(self) -> float:
        return self.sum_log / self.n

    @property
    def var_log(self) -> float:
        return max(self.sum_log2 / self.n - self.mean_log**2, 0.0)

    @classmethod
    def of(cls, values: np.ndarray, exact_limit: int = EXACT_LIMIT) -> Sample:
        """Reduce positive values to a weighted sample: exact unique values when few or
        repeated, else `LOG_BINS` log-space bins with exact sufficient statistics."""
        x = np.asarray(values, dtype=np.float64)
        if x.size == 0:
            raise FitError("no positive values to fit (seconds or tokens)")
        if not np.all(x > 0):
            raise UsageError(
                f"must all be positive, found minimum {np.nanmin(x)} (NaN or ≤ 0)", param="values"
            )
        logx = np.log(x)
        n, sum_x = float(x.size), float(x.sum())
        sum_log, sum_log2 = float(logx.sum()), float(np.dot(logx, logx))
        if x.size <= exact_limit:
            u, w = np.unique(x, return_counts=True)
            return cls(u, w.astype(np.float64), n, sum_x, sum_log, sum_log2)
        lo, hi = float(logx.min()), float(logx.max())
        width = max(hi - lo, 1e-12) / LOG_BINS
        idx = np.minimum(((logx - lo) / width).astype(np.int64), LOG_BINS - 1)
        counts = np.bincount(idx, minlength=LOG_BINS).astype(np.float64)
        logsum = np.bincount(idx, weights=logx, minlength=LOG_BINS)
        keep = counts > 0
        edges = np.exp(lo + width * np.arange(LOG_BINS + 1))
        reps = np.exp(logsum[keep] / counts[keep])
        return cls(reps, counts[keep], n, sum_x, sum_log, sum_log2, True, edges)

    def coarse(self, bins: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """(values, weights) re-binned to at most ``bins`` log-space bins (weighted mean log
        per bin): for optimisers that evaluate a likelihood thousands of times. Final
        likelihoods are still computed on the sample itself."""
        if self.x.size <= bins:
            return self.x, self.w
        logx = np.log(self.x)
        lo, hi = float(logx.min()), float(logx.max())
        idx = np.minimum(((logx - lo) / max(hi - lo, 1e-12) * bins).astype(np.int64), bins - 1)
        w = np.bincount(idx, weights=self.w, minlength=bins)
        lw = np.bincount(idx, weights=self.w * logx, minlength=bins)
        keep = w > 0
        return np.exp(lw[keep] / w[keep]), w[keep]

    @classmethod
    def weighted(cls, values: np.ndarray, weights: np.ndarray) -> Sample:
        """A sample from distinct positive values and their counts (exact)."""
        x = np.asarray(values, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        logx = np.log(x)
        return cls(
            x,
            w,
            float(w.sum()),
            float(np.dot(w, x)),
            float(np.dot(w, logx)),
            float(np.dot(w, logx * logx)),
        )


# ---------------------------------------------------------------------------------------------
# Per-family formulas: tail first moment, log-density sum


def tail_mean(family: str, shape: float, scale: float, x: np.ndarray) -> np.ndarray:
    """∫ₓ^∞ g f(g) dg: the first moment above x (closed forms via incomplete gamma / normal)."""
    z = np.maximum(np.asarray(x, dtype=np.float64), 0.0) / scale
    if family in ("exponential", "gamma"):
        a = 1.0 if family == "exponential" else shape
        return a * scale * sp.gammaincc(a + 1.0, z)
    if family == "weibull":
        return scale * math.gamma(1 + 1 / shape) * sp.gammaincc(1 + 1 / shape, z**shape)
    with np.errstate(divide="ignore"):
        return scale * math.exp(shape * shape / 2) * sp.ndtr(shape - np.log(z) / shape)


def loglik(family: str, shape: float, scale: float, s: Sample) -> float:
    """Σ wᵢ log f(xᵢ); exact sufficient statistics except Weibull's Σxᶜ (bins if binned)."""
    n, ls = s.n, math.log(scale)
    if family == "exponential":
        return -n * ls - s.sum_x / scale
    if family == "gamma":
        return -n * sp.gammaln(shape) - n * shape * ls + (shape - 1) * s.sum_log - s.sum_x / scale
    if family == "lognormal":
        mu = ls
        sq = s.sum_log2 - 2 * mu * s.sum_log + n * mu * mu
        return -s.sum_log - n * math.log(shape * math.sqrt(2 * math.pi)) - sq / (2 * shape**2)
    # weibull
    powsum = float(np.dot(s.w, np.exp(shape * (np.log(s.x) - ls))))
    return n * math.log(shape) - n * shape * ls + (shape - 1) * s.sum_log - powsum


# ---------------------------------------------------------------------------------------------
# Maximum likelihood on exact (uncensored) values


def _gamma_shape(s_stat: float) -> float:
    """Solve log a − ψ(a) = s (the gamma MLE shape equation) by Newton from Minka's start."""
    if s_stat <= 0:
        return 1e6  # degenerate: all values equal
    a = (3 - s_stat + math.sqrt((s_stat - 3) ** 2 + 24 * s_stat)) / (12 * s_stat)
    for _ in range(50):
        g = math.log(a) - sp.digamma(a) - s_stat
        step = g / (1 / a - sp.polygamma(1, a))
        a_new = a - step
        if a_new <= 0:
            a_new = a / 2
        if abs(a_new - a) < 1e-12 * a:
            return a_new
        a = a_new
    return a


def _weibull_shape(s: Sample) -> float:
    """Solve the Weibull profile score 1/c + mean log − Σw xᶜ log x / Σw xᶜ = 0 for c."""
    logx = np.log(s.x)
    shift = logx.max()
    mean_log = s.mean_log

    def score(log_c: float) -> float:
        c = math.exp(log_c)
        p = s.w * np.exp(c * (logx - shift))
        return 1 / c + mean_log - float(np.dot(p, logx) / p.sum())

    lo, hi = math.log(0.01), math.log(100.0)
    if score(lo) <= 0:
        return 0.01
    if score(hi) >= 0:
        return 100.0
    # without full_output brentq returns the root alone; SciPy's inline types do not say so
    return math.exp(opt.brentq(score, lo, hi, xtol=1e-10))  # pyright: ignore[reportArgumentType]


def mle(family: str, s: Sample) -> tuple[float, float]:
    """Maximum-likelihood (shape, scale) with loc = 0."""
    if family == "exponential":
        return 1.0, s.mean
    if family == "gamma":
        a = _gamma_shape(math.log(s.mean) - s.mean_log)
        return a, s.mean / a
    if family == "lognormal":
        return math.sqrt(max(s.var_log, 1e-300)), math.exp(s.mean_log)
    c = _weibull_shape(s)
    logx = np.log(s.x)
    shift = logx.max()
    scale = math.exp(shift + math.log(float(np.dot(s.w, np.exp(c * (logx - shift)))) / s.n) / c)
    return c, scale


def mle_fixed_mean(family: str, s: Sample, mean: float) -> tuple[float, float]:
    """Maximum likelihood of the shape with the mean fixed (scale = mean / scale_one_mean(shape)).

    For the exponential and gamma families this equals the MLE (their MLE already matches the
    sample mean); for Weibull and lognormal it does not, and the difference is the point.
    """
    if family == "exponential":
        return 1.0, mean
    if family == "gamma" and abs(mean - s.mean) <= 1e-12 * mean:
        return mle(family, s)

    def nll(log_shape: float) -> float:
        shape = math.exp(log_shape)
        return -loglik(family, shape, mean / scale_one_mean(family, shape), s)

    lo, hi = _shape_bounds(family)
    res = opt.minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
    shape = math.exp(res.x)
    return shape, mean / scale_one_mean(family, shape)


def _shape_bounds(family: str) -> tuple[float, float]:
    """Search range of log(shape): wide enough for the burstiest real traces (CV ≈ 13)."""
    if family == "weibull":
        return math.log(0.05), math.log(50.0)
    if family == "lognormal":
        return math.log(0.01), math.log(8.0)
    return math.log(1e-3), math.log(1e4)  # gamma


# ---------------------------------------------------------------------------------------------
# Interval-censored likelihood on a timestamp grid


def grid_pmf(family: str, shape: float, scale: float, k: np.ndarray, r: float) -> np.ndarray:
    """P(observed gap = k·r) when arrival times are quantised to a grid of resolution r.

    With a uniform phase of each arrival inside its grid cell, a true gap g is recorded as
    k·r with probability tri(g/r − k) = max(0, 1 − |g/r − k|) (a triangular kernel: the
    interval is ((k−1)r, (k+1)r), not [kr, (k+1)r)). Integrating the density against it gives
    the second difference of I(x) = ∫₀ˣ F:  P(k) = [I((k+1)r) − 2I(kr) + I((k−1)r)] / r.
    For k ≥ 1 we use the tail form I(x) = x − mean + Q(x), Q(x) = ∫ₓ^∞ S = tail_mean − x·S(x),
    whose linear part cancels in the second difference, so the tail keeps full precision; for
    k = 0 the head form P(0) = I(r)/r = F(r) − (mean − tail_mean(r))/r.
    """
    k = np.asarray(k, dtype=np.float64)

    def q(x: np.ndarray) -> np.ndarray:
        return tail_mean(family, shape, scale, x) - x * positive_sf(family, shape, scale, x)

    x0, x1, x2 = (k - 1) * r, k * r, (k + 1) * r
    tail = (q(x2) - 2 * q(x1) + q(np.maximum(x0, 0.0))) / r
    mean = scale * scale_one_mean(family, shape)
    head_mass = (mean - tail_mean(family, shape, scale, np.array([r])))[0]
    p0 = positive_cdf(family, shape, scale, np.array([r]))[0] - head_mass / r
    out = np.where(k == 0, p0, tail)
    # Where cancellation leaves rounding noise (|P| ≲ 1e-300), fall back to r·f(kr).
    return np.maximum(out, 1e-300)


def grid_cdf(family: str, shape: float, scale: float, k: np.ndarray, r: float) -> np.ndarray:
    """P(observed gap ≤ k·r) on the grid of `grid_pmf`: the sum of P(0 … k) telescopes to
    [I((k+1)r) − I(kr)] / r = 1 + [Q((k+1)r) − Q(kr)] / r (same I and Q as there)."""
    k = np.asarray(k, dtype=np.float64)

    def q(x: np.ndarray) -> np.ndarray:
        return tail_mean(family, shape, scale, x) - x * positive_sf(family, shape, scale, x)

    return np.clip(1.0 + (q((k + 1) * r) - q(k * r)) / r, 0.0, 1.0)


def grid_loglik(
    family: str, shape: float, scale: float, k: np.ndarray, w: np.ndarray, r: float
) -> float:
    """Σ wₖ log P(k) — the interval-censored log-likelihood of grid-recorded gaps."""
    return float(np.dot(w, np.log(grid_pmf(family, shape, scale, k, r))))


def _bounded_argmin(f: Callable[[float], float], lo: float, hi: float) -> float:
    """Where `f` is least on [lo, hi] (SciPy's bounded Brent search)."""
    res = opt.minimize_scalar(f, bounds=(lo, hi), method="bounded")
    # SciPy's inline types make this OptimizeResult a plain object, without its fields
    return float(res.x)  # pyright: ignore[reportAttributeAccessIssue]


def grid_mle(
    family: str, k: np.ndarray, w: np.ndarray, r: float, mean: float | None = None
) -> tuple[float, float]:
    """Maximum interval-censored likelihood (shape, scale); with ``mean`` only the shape is free.

    The sample mean of grid-recorded gaps is unbiased for the true mean (the uniform phase
    rounds up and down equally), so the mean-preserving variant fixes it from the data.
    """
    m = float(np.dot(w, k) * r / w.sum())
    if family == "exponential":
        if mean is not None:
            return 1.0, mean

        def nll1(log_scale: float) -> float:
            return -grid_loglik(family, 1.0, math.exp(log_scale), k, w, r)

        return 1.0, math.exp(_bounded_argmin(nll1, math.log(m) - 5, math.log(m) + 5))
    lo, hi = _shape_bounds(family)
    if mean is not None:

        def nll_shape(log_shape: float) -> float:
            shape = math.exp(log_shape)
            return -grid_loglik(family, shape, mean / scale_one_mean(family, shape), k, w, r)

        shape = math.exp(_bounded_argmin(nll_shape, lo, hi))
        return shape, mean / scale_one_mean(family, shape)

    def nll(theta: np.ndarray) -> float:
        shape = math.exp(np.clip(theta[0], lo, hi))
        scale = math.exp(theta[1])
        return -grid_loglik(family, shape, scale, k, w, r)

    # Start from the mean-preserving optimum: one good 1-D solve, then a 2-D polish.
    shape0, scale0 = grid_mle(family, k, w, r, mean=m)
    res = opt.minimize(
        nll,
        np.array([math.log(shape0), math.log(scale0)]),
        method="Nelder-Mead",
        options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 2000},
    )
    return math.exp(float(np.clip(res.x[0], lo, hi))), math.exp(float(res.x[1]))


# ---------------------------------------------------------------------------------------------
# Two-component lognormal mixture (Gaussian mixture in log space) by weighted EM


def lognormal_mixture_em(
    x: np.ndarray, w: np.ndarray, iters: int = 300
) -> tuple[dict[str, float], float]:
    """EM for a 2-component Gaussian mixture on log(x) with weights w (counts); deterministic
    start at the weighted 25th/75th percentiles. Returns SciPy-named mixture params
    (``w_i, s_i, scale_i``) and the log-likelihood of x itself (Σ w log f(x))."""
    y = np.log(np.asarray(x, dtype=np.float64))
    w = np.asarray(w, dtype=np.float64)
    order = np.argsort(y)
    cw = np.cumsum(w[order]) / w.sum()
    mu = np.array([y[order][np.searchsorted(cw, q)] for q in (0.25, 0.75)], dtype=float)
    spread = float(np.sqrt(np.average((y - np.average(y, weights=w)) ** 2, weights=w)))
    sd = np.full(2, max(spread, 1e-3) / 2)
    pi = np.array([0.5, 0.5])
    prev = -math.inf
    ll = -math.inf
    for _ in range(iters):
        z = (y[:, None] - mu) / sd
        dens = pi * np.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi))
        tot = np.maximum(dens.sum(1), 1e-300)
        r = dens / tot[:, None] * w[:, None]
        nk = np.maximum(r.sum(0), 1e-300)
        pi = nk / nk.sum()
        mu = (r * y[:, None]).sum(0) / nk
        sd = np.sqrt(np.maximum((r * (y[:, None] - mu) ** 2).sum(0) / nk, 1e-6))
        ll = float(np.dot(w, np.log(tot)))
        if ll - prev < 1e-8 * abs(ll):
            break
        prev = ll
    params: dict[str, float] = {}
    for i in range(2):
        params[f"w_{i + 1}"] = float(pi[i])
        params[f"s_{i + 1}"] = float(sd[i])
        params[f"scale_{i + 1}"] = float(math.exp(mu[i]))
    return params, ll - float(np.dot(w, y))
