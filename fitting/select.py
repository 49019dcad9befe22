"""Model selection you can audit: every candidate carries loglik, AIC, BIC, KS, AD and n.

KS and AD are reported as effect sizes (distances), never with the textbook p-value: with
parameters estimated from the same data that p-value is wrong (far too large). A valid p-value
comes only from a parametric bootstrap (`bootstrap_pvalue`): simulate from the fitted model,
refit each simulated sample the same way, and see how often its KS distance reaches the
observed one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from burstlab import distributions as dist
from burstlab.errors import FitError
from burstlab.fitting import families as fam
from burstlab.spec import FamilyFit, FitDiagnostics


def information(loglik: float, k: int, n: float) -> tuple[float, float]:
    """(AIC, BIC) = (2k − 2ℓ, k ln n − 2ℓ)."""
    return 2 * k - 2 * loglik, k * math.log(max(n, 1.0)) - 2 * loglik


def ks_ad_from_cdf(counts: np.ndarray, fitted_cdf: np.ndarray, n: float) -> tuple[float, float]:
    """KS and (discrete-form) Anderson–Darling A² from the fitted CDF at ordered support points.

    ``counts`` are the observations at (or in the bin ending at) each point. KS compares the
    ECDF with the fitted CDF at the points (where both are known exactly); A² is the
    Choulakian–Lockhart–Stephens discrete form n Σ (Fₙ − F)² p / (F(1 − F)), which tends to
    the usual A² as the grid refines.
    """
    c = np.cumsum(counts) / n
    f = np.clip(fitted_cdf, 0.0, 1.0)
    ks = float(np.max(np.abs(c - f)))
    p = np.diff(np.concatenate(([0.0], f)))
    denom = f * (1 - f)
    ok = denom > 1e-300
    ad = float(n * np.sum((c[ok] - f[ok]) ** 2 * p[ok] / denom[ok]))
    return ks, ad


def ks_ad(family: str, shape: float, scale: float, s: fam.Sample) -> tuple[float, float]:
    """KS distance and A² of a continuous sample against a fitted family (see `ks_ad_cdf`)."""
    return ks_ad_cdf(lambda x: dist.positive_cdf(family, shape, scale, x), s)


def ks_ad_cdf(cdf: Callable[[np.ndarray], np.ndarray], s: fam.Sample) -> tuple[float, float]:
    """KS distance and A² of a continuous sample against any fitted CDF.

    Exact samples use the textbook formulas on every value; binned samples (over
    `families.EXACT_LIMIT` values) evaluate at the 65,536 bin edges, which bounds the KS error
    by the largest bin's mass.
    """
    if s.binned:
        edges = s.edges
        assert edges is not None
        # a representative (mean log of its bin) lies inside its bin: its upper edge is next
        upper = edges[np.minimum(np.searchsorted(edges, s.x, side="right"), edges.size - 1)]
        return ks_ad_from_cdf(s.w, cdf(upper), s.n)
    x = np.repeat(s.x, s.w.astype(np.int64))
    n = x.size
    f = np.clip(cdf(x), 1e-300, 1 - 1e-16)
    i = np.arange(1, n + 1)
    ks = float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))
    ad = float(-n - np.sum((2 * i - 1) * (np.log(f) + np.log1p(-f[::-1]))) / n)
    return ks, ad


def diagnose(
    family: str, shape: float, scale: float, s: fam.Sample, k: int, loglik: float | None = None
) -> FitDiagnostics:
    """Diagnostics of a fit to continuous values (loglik from sufficient statistics)."""
    ll = fam.loglik(family, shape, scale, s) if loglik is None else loglik
    aic, bic = information(ll, k, s.n)
    ks, ad = ks_ad(family, shape, scale, s)
    mean_ratio = scale * dist.scale_one_mean(family, shape) / s.mean
    return FitDiagnostics(int(s.n), k, ll, aic, bic, ks, ad, mean_ratio=mean_ratio)


def diagnose_grid(
    family: str, shape: float, scale: float, k_vals: np.ndarray, w: np.ndarray, r: float, k: int
) -> FitDiagnostics:
    """Diagnostics of an interval-censored fit: likelihood, KS and A² on the grid itself."""
    n = float(w.sum())
    ll = fam.grid_loglik(family, shape, scale, k_vals, w, r)
    aic, bic = information(ll, k, n)
    ks, ad = grid_ks_ad(family, shape, scale, k_vals, w, r)
    mean_ratio = scale * dist.scale_one_mean(family, shape) / (float(np.dot(w, k_vals)) * r / n)
    return FitDiagnostics(int(n), k, ll, aic, bic, ks, ad, mean_ratio=mean_ratio)


#: `grid_ks_ad` tabulates every grid cell up to this many (a 1-s grid: three days).
MAX_GRID_CELLS = 1 << 18


def grid_ks_ad(
    family: str, shape: float, scale: float, k_vals: np.ndarray, w: np.ndarray, r: float
) -> tuple[float, float]:
    """KS distance and A² of gaps on a grid of step `r` (`k_vals` steps, weights `w`) against
    the fitted family's probabilities of each grid cell.

    Beyond `MAX_GRID_CELLS` cells (a week-long gap on a 1-s grid) only KS is computed, on
    the observed cells and the cells just before them with the fitted CDF in closed form
    (`families.grid_cdf`) — exact, because between observed cells the ECDF is flat and the
    fitted CDF rises, so the largest distance is at an end of the run. A² needs every cell
    and is NaN there (null in a spec: not available)."""
    top = int(k_vals.max())
    if top + 1 > MAX_GRID_CELLS:
        kv = k_vals.astype(np.int64)
        support = np.unique(np.concatenate([kv, np.maximum(kv - 1, 0)]))
        counts = np.zeros(support.size)
        counts[np.searchsorted(support, kv)] = w
        fitted = fam.grid_cdf(family, shape, scale, support.astype(np.float64), r)
        return ks_ad_from_cdf(counts, fitted, float(w.sum()))[0], math.nan
    grid = np.arange(top + 1, dtype=np.float64)
    counts = np.zeros(top + 1)
    counts[k_vals.astype(np.int64)] = w
    pmf = fam.grid_pmf(family, shape, scale, grid, r)
    return ks_ad_from_cdf(counts, np.cumsum(pmf), float(w.sum()))


def stderr(nll: Callable[[np.ndarray], float], theta: np.ndarray) -> np.ndarray | None:
    """Asymptotic standard errors: sqrt(diag(H⁻¹)) of the negative log-likelihood's Hessian
    by central differences (relative step 1e-4). None where the Hessian is not positive
    definite (a boundary optimum) or the likelihood cannot be evaluated around the optimum
    (a step leaves the parameter space)."""
    theta = np.asarray(theta, dtype=np.float64)
    try:
        return _stderr(nll, theta)
    except (ValueError, OverflowError, ZeroDivisionError):  # math.log(≤ 0), exp overflow
        return None


def _stderr(nll: Callable[[np.ndarray], float], theta: np.ndarray) -> np.ndarray | None:
    d = theta.size
    # relative steps, so a tiny positive parameter (a scale of 1e-12 s) stays positive
    h = 1e-4 * np.where(theta != 0, np.abs(theta), 1e-8)
    hess = np.empty((d, d))
    f0 = nll(theta)
    for i in range(d):
        ei = np.zeros(d)
        ei[i] = h[i]
        hess[i, i] = (nll(theta + ei) - 2 * f0 + nll(theta - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(d)
            ej[j] = h[j]
            hess[i, j] = hess[j, i] = (
                nll(theta + ei + ej)
                - nll(theta + ei - ej)
                - nll(theta - ei + ej)
                + nll(theta - ei - ej)
            ) / (4 * h[i] * h[j])
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return None
    diag = np.diag(cov)
    if not np.all(np.isfinite(diag)) or np.any(diag <= 0):
        return None
    return np.sqrt(diag)


def bootstrap_pvalue(
    observed_ks: float,
    simulate_and_refit_ks: Callable[[np.random.Generator], float],
    n_boot: int = 99,
    seed: int = 0,
) -> float:
    """Parametric-bootstrap p-value (B + 1 convention): P(KS* ≥ observed KS).

    ``simulate_and_refit_ks`` draws one sample from the fitted model, refits it with the same
    method, and returns that sample's KS distance against its own refit.
    """
    rng = np.random.default_rng(seed)
    hits = sum(simulate_and_refit_ks(rng) >= observed_ks for _ in range(n_boot))
    return (1 + hits) / (n_boot + 1)


#: Candidate-table columns that fit a terminal (the full table has parameters and stderrs).
AUDIT_COLUMNS = ("family", "method", "n", "bic", "delta_bic", "ks", "ad", "mean_ratio", "chosen")


def audit(table: pl.DataFrame) -> pl.DataFrame:
    """The columns of a candidate table that fit a terminal (`Selection.table` has them all)."""
    return table.select([c for c in AUDIT_COLUMNS if c in table.columns])


@dataclass
class Selection:
    """Candidates for one variable and the rule that picks among them.

    ``best`` minimises ``criterion`` over candidates whose method is in ``eligible`` (all when
    empty) — e.g. arrivals pick among mean-preserving fits so the request rate is kept, while
    the plain MLE fits stay in the table for comparison.
    """

    candidates: list[FamilyFit]
    criterion: Literal["bic", "aic"] = "bic"
    eligible: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    def _score(self, c: FamilyFit) -> float:
        d = c.diagnostics
        v = None if d is None else getattr(d, self.criterion)
        return math.inf if v is None or not math.isfinite(v) else v

    @property
    def best(self) -> FamilyFit:
        """The chosen candidate."""
        pool = [c for c in self.candidates if not self.eligible or c.method in self.eligible]
        if not pool:
            raise FitError(
                f"no eligible candidate: none of the {len(self.candidates)} fits has a method "
                f"in {list(self.eligible)}"
            )
        return min(pool, key=self._score)

    def table(self) -> pl.DataFrame:
        """One row per candidate: family, method, params, loglik, AIC, BIC, Δ, KS, AD, n …

        Δ is measured from the chosen candidate; a negative Δ marks a candidate that scores
        better but is not eligible (e.g. a plain MLE whose mean gap misses the rate)."""
        rows = []
        best = self.best
        pool_scores = [
            self._score(c)
            for c in self.candidates
            if not self.eligible or c.method in self.eligible
        ]
        floor = min(pool_scores) if pool_scores else math.nan
        for c in self.candidates:
            d = c.diagnostics or FitDiagnostics(0, 0, None, None, None)
            rows.append(
                {
                    "family": c.family,
                    "method": c.method,
                    "params": json.dumps({k: round(v, 6) for k, v in c.params.items()}),
                    "n": d.n,
                    "k": d.k,
                    "loglik": d.loglik,
                    "aic": d.aic,
                    "bic": d.bic,
                    f"delta_{self.criterion}": self._score(c) - floor,
                    "ks": d.ks,
                    "ad": d.ad,
                    "mean_ratio": d.mean_ratio,
                    "gof_pvalue": d.gof_pvalue,
                    "chosen": c is best,
                }
            )
        return pl.DataFrame(rows).sort(f"delta_{self.criterion}")
