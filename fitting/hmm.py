"""Poisson hidden Markov model on windowed counts, fitted by EM (Baum–Welch).

count_w ~ Poisson(expected_w · levels[state_w]) with the state a Markov chain over windows;
``expected_w`` is the exposure (rate curve × window length). The forward–backward pass is
scaled (no underflow on long traces) and vectorised per step; the number of states is chosen
by the caller (BIC, see `burstlab.fitting.modulation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.special as sp

from burstlab.fitting.dispersion import stationary
from burstlab.fitting.select import information


@dataclass
class HMMFit:
    """A fitted Poisson hidden Markov model over windowed counts."""

    k: int
    levels: np.ndarray  # rate multipliers per state
    transition: np.ndarray  # k×k, rows sum to 1
    initial: np.ndarray
    loglik: float
    n_windows: int
    iterations: int
    converged: bool
    posterior: np.ndarray  # n_windows × k state probabilities given all counts

    @property
    def n_params(self) -> int:
        return self.k + self.k * (self.k - 1) + (self.k - 1)

    @property
    def aic(self) -> float:
        return information(self.loglik, self.n_params, self.n_windows)[0]

    @property
    def bic(self) -> float:
        return information(self.loglik, self.n_params, self.n_windows)[1]

    def stationary(self) -> np.ndarray:
        """Stationary distribution of the chain (left eigenvector of eigenvalue 1)."""
        return np.ones(1) if self.k == 1 else stationary(self.transition)


def _emission_logp(counts: np.ndarray, expected: np.ndarray, levels: np.ndarray) -> np.ndarray:
    mu = np.maximum(expected[:, None] * levels[None, :], 1e-300)
    return counts[:, None] * np.log(mu) - mu - sp.gammaln(counts + 1.0)[:, None]


def _forward_backward(logb: np.ndarray, trans: np.ndarray, init: np.ndarray):
    n, k = logb.shape
    shift = logb.max(axis=1, keepdims=True)
    b = np.exp(logb - shift)
    alpha = np.empty((n, k))
    scale = np.empty(n)
    a = init * b[0]
    scale[0] = a.sum()
    alpha[0] = a / scale[0]
    for t in range(1, n):
        a = (alpha[t - 1] @ trans) * b[t]
        s = a.sum()
        scale[t] = s
        alpha[t] = a / s
    beta = np.empty((n, k))
    beta[-1] = 1.0
    for t in range(n - 2, -1, -1):
        beta[t] = (trans @ (b[t + 1] * beta[t + 1])) / scale[t + 1]
    gamma = alpha * beta
    gamma /= gamma.sum(axis=1, keepdims=True)
    # expected transitions Σ_t ξ_t(i, j)
    xi = np.einsum("ti,ij,tj->ij", alpha[:-1], trans, b[1:] * beta[1:] / scale[1:, None])
    loglik = float(np.sum(np.log(scale)) + shift.sum())
    return gamma, xi, loglik


def fit_poisson_hmm(
    counts: np.ndarray,
    expected: np.ndarray,
    k: int,
    max_iter: int = 100,
    tol: float = 1e-2,
) -> HMMFit:
    """EM fit of a k-state Poisson HMM: count_w ~ Poisson(expected_w · levels[state_w]).

    Starts from levels at evenly spaced quantiles of count/expected and a sticky chain
    (P[i][i] = 0.9); stops when an iteration gains less than ``tol`` in log-likelihood
    (BIC differences that matter are ≫ 0.01) or after ``max_iter`` iterations.
    """
    c = np.asarray(counts, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    ratio = c / np.maximum(e, 1e-300)
    if k == 1:
        levels = np.array([c.sum() / e.sum()])
        ll = float(_emission_logp(c, e, levels).sum())
        return HMMFit(
            1, levels, np.ones((1, 1)), np.ones(1), ll, c.size, 0, True, np.ones((c.size, 1))
        )
    qs = (np.arange(k) + 0.5) / k
    levels = np.maximum(np.quantile(ratio, qs), 1e-3) * (1 + 1e-3 * np.arange(k))
    trans = np.full((k, k), 0.1 / (k - 1))
    np.fill_diagonal(trans, 0.9)
    init = np.full(k, 1.0 / k)
    prev = -math.inf
    converged = False
    it = 0
    gamma = np.full((c.size, k), 1.0 / k)
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported
        gamma, xi, ll = _forward_backward(_emission_logp(c, e, levels), trans, init)
        levels = np.maximum((gamma * c[:, None]).sum(0) / (gamma * e[:, None]).sum(0), 1e-9)
        trans = xi / np.maximum(xi.sum(axis=1, keepdims=True), 1e-300)
        init = gamma[0]
        if ll - prev < tol:
            converged = True
            break
        prev = ll
    order = np.argsort(levels)
    gamma, _, ll = _forward_backward(
        _emission_logp(c, e, levels[order]), trans[np.ix_(order, order)], init[order]
    )
    return HMMFit(
        k,
        levels[order],
        trans[np.ix_(order, order)],
        init[order],
        ll,
        c.size,
        it,
        converged,
        gamma,
    )
