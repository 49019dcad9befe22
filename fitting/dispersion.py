"""Dispersion implied by a Markov-modulated Poisson process, and the log-AR burst regime.

For a rate λ̄·L_w that is constant over windows of w seconds (L a stationary Markov chain with
mean 1), the index of dispersion of counts has a closed form in the chain's autocovariance;
`implied_idc` computes it (optionally as the expected *sample* value over a finite trace), and
`fit_log_ar` fits a two-timescale log-AR(1) rate to an empirical dispersion curve, discretised
by Rouwenhorst's method into a chain the spec can carry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize as opt

# ---------------------------------------------------------------------------------------------
# Implied dispersion of a Markov-modulated process (the model check used for selection)


def chain_autocov(levels: np.ndarray, trans: np.ndarray, pi: np.ndarray, lags: int) -> np.ndarray:
    """Cov(L_i, L_{i+d}) of the level multiplier for d = 0…lags−1 (stationary chain, mean 1)."""
    lv = np.asarray(levels, dtype=np.float64)
    lv = lv / float(np.dot(pi, lv))
    out = np.empty(lags)
    v = pi * lv  # row vector π∘l, propagated by P each lag
    for d in range(lags):
        out[d] = float(v @ lv) - 1.0
        v = v @ trans
    return out


def implied_idc(
    autocov: np.ndarray,
    rate_per_s: float,
    window_s: float,
    scales: np.ndarray,
    c0: float = 1.0,
    span_s: float | None = None,
) -> np.ndarray:
    """IDC(T) of a process whose rate is λ̄·L_w on windows of ``window_s`` (L a stationary
    mean-1 level with autocovariance ``autocov`` by lag) and Poisson-like inside (dispersion
    c0), for T = m·window_s: c0 + λ̄·w/m · Σ_{i,j<m} Cov(L_i, L_j).

    With ``span_s`` (the length of the trace the curve is measured on) it is the *expected
    sample* IDC instead: a trace of n = span/T windows measures the variance around its own
    mean, so E[IDC_sample(T)] = (n·IDC(T) − IDC(span)) / (n − 1). Slow components then count
    as fully as the data can show them — without this the fit under-states them."""

    def idc(T: float) -> float:
        m = max(round(T / window_s), 1)
        d = np.arange(1, m)
        acv = (
            autocov[:m]
            if autocov.size >= m
            else np.concatenate([autocov, np.full(m - autocov.size, autocov[-1])])
        )
        total = m * acv[0] + 2.0 * float(np.dot(m - d, acv[1:m]))
        return c0 + rate_per_s * window_s / m * total

    whole = idc(span_s) if span_s else None
    out = []
    for T in scales:
        n = math.floor(span_s / T) if span_s else 0
        out.append((n * idc(T) - whole) / (n - 1) if whole is not None and n >= 2 else idc(T))
    return np.asarray(out)


def rouwenhorst(n: int, rho: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Rouwenhorst's n-state Markov chain for a Gaussian AR(1) with persistence ρ and
    stationary s.d. σ: (states, transition). Exact in mean, variance and autocorrelation,
    which is why it is used rather than Tauchen's grid for persistent processes."""
    p = (1.0 + rho) / 2.0
    mat = np.array([[p, 1 - p], [1 - p, p]])
    for k in range(3, n + 1):
        z = np.zeros((k, k))
        z[:-1, :-1] += p * mat
        z[:-1, 1:] += (1 - p) * mat
        z[1:, :-1] += (1 - p) * mat
        z[1:, 1:] += p * mat
        z[1:-1] /= 2.0
        mat = z
    psi = sigma * math.sqrt(n - 1)
    return np.linspace(-psi, psi, n), mat


@dataclass
class LogARFit:
    """Log-rate modulation as a sum of two AR(1) processes (fast and slow), each discretised
    to a Rouwenhorst chain; fitted by matching the empirical dispersion curve."""

    sigmas: tuple[float, float]  # stationary s.d. of each log-rate component
    taus_s: tuple[float, float]  # correlation times (seconds)
    levels: np.ndarray
    transition: np.ndarray
    stationary: np.ndarray
    rms_log_error: float  # fit quality on the dispersion curve


def fit_log_ar(
    idc_scales: np.ndarray,
    idc_values: np.ndarray,
    rate_per_s: float,
    window_s: float,
    states_each: int = 5,
    span_s: float | None = None,
) -> LogARFit:
    """Fit σ₁, τ₁, σ₂, τ₂ of log λ = x₁ + x₂ (independent AR(1)s on the window grid) so the
    implied IDC matches the empirical one in log space (least squares), then discretise."""
    scales = np.asarray(idc_scales, dtype=np.float64)
    target = np.log(np.maximum(np.asarray(idc_values, dtype=np.float64), 1e-9))
    lags = round(max(scales.max(), span_s or 0.0) / window_s) + 1
    d = np.arange(lags)

    tau_max = span_s or float(scales.max()) * 10

    def unpack(theta: np.ndarray) -> tuple[float, float, float, float]:
        # σ ≤ 3 and window/2 ≤ τ ≤ the span: a component slower than the data cannot be told
        # from a constant, and an unbounded one would make every synthetic run a lottery
        s1, t1, s2, t2 = np.exp(theta)
        lo = window_s / 2
        return (
            min(s1, 3.0),
            float(np.clip(t1, lo, tau_max)),
            min(s2, 3.0),
            float(np.clip(t2, lo, tau_max)),
        )

    def acv(theta: np.ndarray) -> np.ndarray:
        s1, t1, s2, t2 = unpack(theta)
        g = s1**2 * np.exp(-d * window_s / t1) + s2**2 * np.exp(-d * window_s / t2)
        # lognormal level normalised to mean 1: Cov = exp(Cov of logs) − 1
        return np.expm1(g)

    def loss(theta: np.ndarray) -> float:
        pred = implied_idc(acv(theta), rate_per_s, window_s, scales, span_s=span_s)
        return float(np.mean((np.log(np.maximum(pred, 1e-9)) - target) ** 2))

    top = float(scales.max())
    starts = [
        np.log([0.2, 2 * window_s, 0.2, top]),
        np.log([0.3, 5 * window_s, 0.1, top / 3]),
        np.log([0.1, window_s, 0.3, min(3 * top, tau_max)]),
    ]
    best = min(
        (opt.minimize(loss, s0, method="Nelder-Mead", options={"maxiter": 4000}) for s0 in starts),
        key=lambda r: r.fun,
    )
    s1, t1, s2, t2 = unpack(best.x)
    x1, p1 = rouwenhorst(states_each, math.exp(-window_s / t1), s1)
    x2, p2 = rouwenhorst(states_each, math.exp(-window_s / t2), s2)
    logl = (x1[:, None] + x2[None, :]).ravel()
    trans = np.kron(p1, p2)
    pi = stationary(trans)
    levels = np.exp(logl)
    levels /= float(np.dot(pi, levels))
    return LogARFit((s1, s2), (t1, t2), levels, trans, pi, math.sqrt(best.fun))


def stationary(trans: np.ndarray) -> np.ndarray:
    """Stationary distribution of a Markov chain (left eigenvector of eigenvalue 1)."""
    vals, vecs = np.linalg.eig(trans.T)
    v = np.abs(np.real(vecs[:, np.argmin(np.abs(vals - 1))]))
    return v / v.sum()
