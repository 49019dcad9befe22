"""Renewal models of inter-arrival times: four families, two methods, timestamp grids handled.

Families: exponential, gamma, Weibull, lognormal, all with loc = 0 (a free location makes the
MLE degenerate on gaps that start at 0). Methods:

- ``mle``: plain maximum likelihood;
- ``mean-preserving``: the mean gap is fixed at the sample mean (so a generator reproduces the
  request count) and only the shape is fitted. The choice among families uses these fits.

When the timestamps sit on a grid (whole seconds, Mooncake's ~3 s buckets) many gaps are 0.
Dropping them biases every shape (a shape-0.5 gamma becomes ~1.6); instead each recorded gap
k·r is treated as the event it is — the true gap lay in ((k−1)r, (k+1)r) with a triangular
weight — and the fits maximise that interval-censored likelihood (methods
``interval-censored`` and ``interval-censored mean-preserving``). See docs/fitting.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
import scipy.optimize as opt

from burstlab import distributions as dist
from burstlab.errors import FitError, InputError, SchemaError, UsageError
from burstlab.fitting import families as fam
from burstlab.fitting.select import (
    Selection,
    audit,
    bootstrap_pvalue,
    diagnose,
    diagnose_grid,
    grid_ks_ad,
    information,
    ks_ad,
    ks_ad_cdf,
    stderr,
)
from burstlab.results import Result, Summary
from burstlab.spec import ArrivalSpec, FamilyFit, FitDiagnostics
from burstlab.stats import sorted_times

MEAN_PRESERVING = ("mean-preserving", "interval-censored mean-preserving")
#: Families tried by default: the four renewal families plus a two-lognormal mixture
#: (continuous timestamps only; the censored grid likelihood covers the four).
ARRIVAL_FAMILIES = (*dist.POSITIVE_FAMILIES, "lognormal-mixture")


@dataclass
class Resolution:
    """The timestamp grid of a trace: ``resolution_s`` is None for continuous timestamps.

    ``zero_gap_share`` is the share of gaps that are exactly 0; ``on_grid_share`` the share of
    positive gaps within 2 % of a whole multiple of the grid.
    """

    resolution_s: float | None
    zero_gap_share: float
    on_grid_share: float
    n_gaps: int


#: A gap of at most this many float steps (ulps) of the timestamps' magnitude is a tie.
TIE_ULPS = 8
#: Positive gaps examined when checking a candidate grid.
CHECK_GAPS = 1_000_000


def detect_resolution(arrival_s: np.ndarray | Sequence[float]) -> Resolution:
    """Find the grid that timestamps are quantised to, if any.

    The candidate is the smallest positive gap; it is accepted when ≥ 98 % of positive gaps
    are within 2 % of a whole multiple of it AND it matters — there are zero gaps, or it is
    at least 1 % of the mean gap (Azure's 100 ns ticks do not matter; BurstGPT's 1 s do).
    The grid is then refined as the median of gap / multiple over gaps of 1–3 grid steps
    (Mooncake's buckets are 2,999–3,001 ms apart, so the grid is 3.000 s).
    """
    t = sorted_times(arrival_s)
    d = np.diff(t)
    if d.size == 0:
        return Resolution(None, 0.0, 0.0, 0)
    eps = 1e-9 * max(1.0, float(abs(t[-1])))
    zero = d <= eps
    pos = d[~zero]
    zero_share = float(zero.mean())
    if pos.size == 0:
        return Resolution(None, zero_share, 0.0, int(d.size))
    r0 = float(pos.min())
    pos = pos[:CHECK_GAPS]  # the grid shows in any million gaps; checking more only costs time
    mult = np.rint(pos / r0)
    on_grid = float(np.mean(np.abs(pos / r0 - mult) <= 0.02))
    matters = zero_share > 0 or r0 >= 0.01 * float(d.mean())
    if on_grid < 0.98 or not matters:
        return Resolution(None, zero_share, on_grid, int(d.size))
    small = (mult >= 1) & (mult <= 3)
    r = float(np.median(pos[small] / mult[small]))
    return Resolution(r, zero_share, on_grid, int(d.size))


@dataclass
class ArrivalFit(Result):
    """Renewal fits of one trace's inter-arrival times, with everything needed to audit them."""

    selection: Selection
    resolution: Resolution
    n_gaps: int
    mean_gap_s: float
    cv: float  # coefficient of variation of the recorded gaps
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> FamilyFit:
        """The chosen renewal family (lowest BIC among mean-preserving fits)."""
        return self.selection.best

    @property
    def candidates(self) -> list[FamilyFit]:
        return self.selection.candidates

    def table(self) -> pl.DataFrame:
        """Candidates with loglik, AIC, BIC, KS, AD, n — sorted by ΔBIC."""
        return self.selection.table()

    def summary(self) -> Summary:
        grid = self.resolution.resolution_s
        s = Summary(
            f"inter-arrival fits: {self.n_gaps:,} gaps, mean {self.mean_gap_s:.4g} s, "
            f"CV {self.cv:.3g}, " + (f"grid {grid:g} s" if grid else "continuous timestamps")
        )
        s.add("candidates", audit(self.table()))
        s.notes.extend(self.notes)
        return s

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_gaps": self.n_gaps,
            "mean_gap_s": self.mean_gap_s,
            "cv": self.cv,
            "resolution_s": self.resolution.resolution_s,
            "candidates": self.table().to_dicts(),
            "notes": list(self.notes),
        }

    def to_spec(self) -> ArrivalSpec:
        """The renewal part of an `ArrivalSpec` (the non-stationary parts come from
        `burstlab.fitting.modulation`)."""
        return ArrivalSpec(
            renewal=self.best,
            candidates=list(self.candidates),
            model="renewal",
            resolution_s=self.resolution.resolution_s,
        )


def positive_param(value: Any, param: str) -> float:
    """A parameter that must be a finite number > 0 (seconds, a width), as a float; a
    UsageError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UsageError(f"expected a number of seconds, found {value!r}", param=param)
    x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise UsageError(f"must be a finite number > 0, found {x:g}", param=param)
    return x


def arrival_times(frame: pl.DataFrame | pl.LazyFrame, column: str = "arrival_s") -> np.ndarray:
    """Sorted arrival times (seconds) from any canonical table with an arrival column."""
    lf = frame.lazy()
    if column not in lf.collect_schema().names():
        raise SchemaError(f"table has no {column!r} column; found {lf.collect_schema().names()}")
    t = lf.select(pl.col(column).drop_nulls().sort()).collect().to_series().to_numpy()
    return np.asarray(t, dtype=np.float64)


def fit_arrivals(
    frame: pl.DataFrame | pl.LazyFrame | np.ndarray,
    *,
    resolution_s: float | Literal["auto"] | None = "auto",
    families: Sequence[str] = ARRIVAL_FAMILIES,
    gof: bool = False,
    gof_n: int = 1000,
    gof_boot: int = 99,
    seed: int = 0,
    with_stderr: bool = True,
) -> ArrivalFit:
    """Fit every family by MLE and mean-preserving ML to the gaps between arrivals.

    ``frame``: a canonical table (``arrival_s``) or an array of arrival times in seconds.
    ``resolution_s``: ``"auto"`` detects the timestamp grid; a number forces one; None says
    the timestamps are continuous. ``gof``: add parametric-bootstrap KS p-values (on a random
    subsample of ``gof_n`` gaps, ``gof_boot`` resamples — slow, so off by default).
    ``with_stderr=False`` skips the standard errors (numerical Hessians) for quick summaries.
    """
    if isinstance(resolution_s, str) and resolution_s != "auto":
        raise UsageError(
            f"expected seconds, None or 'auto', found {resolution_s!r}", param="resolution_s"
        )
    if resolution_s is not None and not isinstance(resolution_s, str):
        resolution_s = positive_param(resolution_s, "resolution_s")
    t = arrival_times(frame) if not isinstance(frame, np.ndarray) else sorted_times(frame)
    bad = int(np.count_nonzero(~np.isfinite(t)))
    if bad:
        raise InputError(None, f"{bad} arrival times are NaN or infinite", field="arrival_s")
    if t.size < 3:
        raise FitError(f"need at least 3 arrivals to fit inter-arrival times, found {t.size}")
    if t[-1] == t[0]:
        raise FitError(
            f"all {t.size} arrivals are at the same time ({t[0]:g} s): no gap between them to fit"
        )
    res = detect_resolution(t)
    if resolution_s == "auto":
        r = res.resolution_s
    else:  # a grid forced by the caller (or None: continuous timestamps)
        r = resolution_s
        res = Resolution(r, res.zero_gap_share, res.on_grid_share, res.n_gaps)
    gaps = np.diff(t)
    mean_gap = float(gaps.mean())
    cv = float(gaps.std() / mean_gap) if mean_gap > 0 else math.nan
    notes: list[str] = []
    if r is not None:
        cands = _fit_grid(gaps, float(r), families, with_stderr)
    else:
        # a gap within a few float steps of the timestamps' magnitude is rounding, not time
        tie = TIE_ULPS * float(np.spacing(max(abs(t[0]), abs(t[-1]))))
        pos = gaps[gaps > tie]
        if pos.size < gaps.size:
            z = gaps.size - pos.size
            notes.append(
                f"{z} of {gaps.size} gaps ({z / gaps.size:.2%}) are 0 on continuous timestamps "
                "(simultaneous arrivals, or apart by less than float resolution); fitted on the "
                "positive gaps"
            )
        if pos.size == 0:
            raise FitError(
                f"all {t.size} arrivals are at the same time to float resolution ({t[0]:g} s): "
                "no gap between them to fit"
            )
        cands = fit_positive(pos, families, with_stderr)
    sel = Selection(cands, "bic", eligible=MEAN_PRESERVING)
    fit = ArrivalFit(sel, res, int(gaps.size), mean_gap, cv, notes)
    if gof:
        _add_gof(fit, gaps, r, gof_n, gof_boot, seed)
    return fit


def fit_positive(
    values: np.ndarray,
    families: Sequence[str] = ARRIVAL_FAMILIES,
    with_stderr: bool = True,
) -> list[FamilyFit]:
    """MLE and mean-preserving fits of positive continuous values (seconds): inter-arrival
    gaps, think times, execution and cold-start durations. Exponential and gamma MLEs already
    keep the mean, so they are listed under both methods. ``lognormal-mixture`` in
    ``families`` adds a two-component lognormal mixture (EM, k = 5) and its mean-preserving
    variant (constrained maximum likelihood)."""
    s = fam.Sample.of(values)
    out = []
    for family in (f for f in families if f in dist.POSITIVE_FAMILIES):
        for method in ("mle", "mean-preserving"):
            if method == "mle":
                shape, scale = fam.mle(family, s)
            else:
                if family in ("exponential", "gamma"):
                    continue  # identical to the MLE (its scale already matches the sample mean)
                shape, scale = fam.mle_fixed_mean(family, s, s.mean)
            diag = diagnose(family, shape, scale, s, 1 if family == "exponential" else 2)
            se = _stderr_continuous(family, shape, scale, s, method) if with_stderr else None
            out.append(FamilyFit(family, dist.named_params(family, shape, scale), method, diag, se))
    if "lognormal-mixture" in families and s.x.size >= 10:
        out += _mixture_candidates(s)
    # exponential and gamma MLE are mean-preserving: list them as such too for selection
    for c in list(out):
        if c.method == "mle" and c.family in ("exponential", "gamma"):
            out.append(FamilyFit(c.family, c.params, "mean-preserving", c.diagnostics, c.stderr))
    return out


def _mixture_candidates(s: fam.Sample) -> list[FamilyFit]:
    params, _ = fam.lognormal_mixture_em(*s.coarse())  # EM on ≤ 4,096 log bins: fast
    out = []
    for method in ("em-log-space", "mean-preserving"):
        fit = FamilyFit("lognormal-mixture", dict(params), method)
        if method == "mean-preserving":
            fit.params = _mixture_fixed_mean(fit.params, s)
        ll_mp = _mixture_loglik(fit, s)  # scored on the sample itself
        aic, bic = information(ll_mp, 5, s.n)
        ks, ad = ks_ad_cdf(fit.cdf, s)
        fit.diagnostics = FitDiagnostics(
            int(s.n), 5, ll_mp, aic, bic, ks, ad, mean_ratio=fit.mean() / s.mean
        )
        out.append(fit)
    return out


def _mixture_fixed_mean(params: dict[str, float], s: fam.Sample) -> dict[str, float]:
    """Maximum likelihood of the 2-lognormal mixture with its mean fixed at the sample mean:
    the second component's log-scale is solved from the constraint, the other four
    parameters (logit weight, log-scale 1, log σ₁, log σ₂) are optimised (Nelder–Mead, from
    the EM solution)."""
    m = s.mean
    xs, ws = s.coarse()
    logx = np.log(xs)

    def unpack(theta: np.ndarray) -> dict[str, float] | None:
        # None for a point the optimiser may wander to but the model cannot take: the mean
        # constraint unsolvable, or a scale / σ / weight that under- or overflows
        try:
            w1 = 1 / (1 + math.exp(-theta[0]))
            mu1, s1, s2 = theta[1], math.exp(theta[2]), math.exp(theta[3])
            rest = m - w1 * math.exp(mu1 + s1 * s1 / 2)
            if rest <= 0 or not 0 < w1 < 1 or s1 <= 0 or s2 <= 0 or math.exp(mu1) <= 0:
                return None
            mu2 = math.log(rest / (1 - w1)) - s2 * s2 / 2
        except (OverflowError, ValueError, ZeroDivisionError):
            return None
        if math.exp(mu2) <= 0:
            return None
        return {
            "w_1": w1,
            "s_1": s1,
            "scale_1": math.exp(mu1),
            "w_2": 1 - w1,
            "s_2": s2,
            "scale_2": math.exp(mu2),
        }

    def nll(theta: np.ndarray) -> float:
        p = unpack(theta)
        if p is None:
            return 1e300
        dens = 0.0
        for i in (1, 2):
            z = (logx - math.log(p[f"scale_{i}"])) / p[f"s_{i}"]
            dens = dens + p[f"w_{i}"] * np.exp(-0.5 * z * z) / (
                p[f"s_{i}"] * math.sqrt(2 * math.pi)
            )
        return -float(np.dot(ws, np.log(np.maximum(dens, 1e-300)) - logx))

    # start: the EM fit with the component that carries more of the mean re-solved
    w1 = min(max(params["w_1"], 1e-6), 1 - 1e-6)
    starts = [
        np.array(
            [
                math.log(w1 / (1 - w1)),
                math.log(params["scale_1"]),
                math.log(params["s_1"]),
                math.log(params["s_2"]),
            ]
        ),
        np.array(
            [
                math.log((1 - w1) / w1),
                math.log(params["scale_2"]),
                math.log(params["s_2"]),
                math.log(params["s_1"]),
            ]
        ),
    ]
    best = min(
        (
            opt.minimize(
                nll,
                x0,
                method="Nelder-Mead",
                options={"maxiter": 2000, "xatol": 1e-6, "fatol": 1e-6},
            )
            for x0 in starts
        ),
        key=lambda r: r.fun,
    )
    out = unpack(best.x)
    if out is None:  # pragma: no cover - the optimiser stays feasible (infeasible = 1e300)
        raise FitError("lognormal mixture: the mean constraint has no feasible solution")
    return out


def _mixture_loglik(fit: FamilyFit, s: fam.Sample) -> float:
    """Σ w log f(x) of a lognormal mixture on a (possibly binned) sample."""
    return float(np.dot(s.w, np.log(np.maximum(fit.pdf(s.x), 1e-300))))


def _stderr_continuous(family, shape, scale, s, method) -> dict[str, float] | None:
    if family == "exponential":
        return {"scale": scale / math.sqrt(s.n)}
    name = dist.SHAPE_NAME[family]
    if method == "mean-preserving":
        mean = s.mean

        def nll1(th: np.ndarray) -> float:
            return -fam.loglik(family, th[0], mean / dist.scale_one_mean(family, th[0]), s)

        se = stderr(nll1, np.array([shape]))
        return None if se is None else {name: float(se[0])}

    def nll(th: np.ndarray) -> float:
        return -fam.loglik(family, th[0], th[1], s)

    se = stderr(nll, np.array([shape, scale]))
    return None if se is None else {name: float(se[0]), "scale": float(se[1])}


def grid_counts(gaps: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Distinct grid multiples k of recorded gaps and how often each occurs (the sufficient
    statistic of the interval-censored likelihood: a few hundred numbers for 10 M gaps)."""
    k = np.rint(gaps / r).astype(np.int64)
    if k.size == 0 or int(k.max()) <= 4 * k.size + (1 << 20):
        counts = np.bincount(k)
        kv = np.nonzero(counts)[0]
        return kv.astype(np.float64), counts[kv].astype(np.float64)
    # a long quiet stretch on a fine grid (a week of 1-ms cells): no table of every multiple
    kv, counts = np.unique(k, return_counts=True)
    return kv.astype(np.float64), counts.astype(np.float64)


def _fit_grid(
    gaps: np.ndarray, r: float, families: Sequence[str], with_stderr: bool = True
) -> list[FamilyFit]:
    kv, w = grid_counts(gaps, r)
    mean = float(np.dot(kv, w) * r / w.sum())
    out = []
    for family in (f for f in families if f in dist.POSITIVE_FAMILIES):
        for method in ("interval-censored", "interval-censored mean-preserving"):
            fixed = mean if method.endswith("mean-preserving") else None
            shape, scale = fam.grid_mle(family, kv, w, r, mean=fixed)
            k = 1 if family == "exponential" else 2
            diag = diagnose_grid(family, shape, scale, kv, w, r, k)
            se = _stderr_grid(family, shape, scale, kv, w, r, fixed) if with_stderr else None
            out.append(FamilyFit(family, dist.named_params(family, shape, scale), method, diag, se))
    return out


def _stderr_grid(family, shape, scale, kv, w, r, mean) -> dict[str, float] | None:
    if family == "exponential":
        if mean is not None:
            return None

        def nll_e(th: np.ndarray) -> float:
            return -fam.grid_loglik(family, 1.0, th[0], kv, w, r)

        se = stderr(nll_e, np.array([scale]))
        return None if se is None else {"scale": float(se[0])}
    name = dist.SHAPE_NAME[family]
    if mean is not None:

        def nll1(th: np.ndarray) -> float:
            return -fam.grid_loglik(
                family, th[0], mean / dist.scale_one_mean(family, th[0]), kv, w, r
            )

        se = stderr(nll1, np.array([shape]))
        return None if se is None else {name: float(se[0])}

    def nll(th: np.ndarray) -> float:
        return -fam.grid_loglik(family, th[0], th[1], kv, w, r)

    se = stderr(nll, np.array([shape, scale]))
    return None if se is None else {name: float(se[0]), "scale": float(se[1])}


# ---------------------------------------------------------------------------------------------
# Parametric-bootstrap goodness of fit


def _simulate_grid_gaps(family, shape, scale, n, r, rng) -> np.ndarray:
    g = dist.sample(family, dist.named_params(family, shape, scale), rng, n)
    t = np.cumsum(g) + rng.random() * r
    return np.diff(np.floor(np.concatenate(([0.0], t)) / r))[1:] * r


def _refit_ks(family: str, method: str, gaps: np.ndarray, r: float | None) -> float:
    if r is None:
        s = fam.Sample.of(gaps[gaps > 0])
        if method == "mle" or family in ("exponential", "gamma"):
            shape, scale = fam.mle(family, s)
        else:
            shape, scale = fam.mle_fixed_mean(family, s, s.mean)
        return ks_ad(family, shape, scale, s)[0]
    kv, w = grid_counts(gaps, r)
    mean = float(np.dot(kv, w) * r / w.sum()) if method.endswith("mean-preserving") else None
    shape, scale = fam.grid_mle(family, kv, w, r, mean=mean)
    return grid_ks_ad(family, shape, scale, kv, w, r)[0]


def _add_gof(fit: ArrivalFit, gaps: np.ndarray, r, n_sub: int, n_boot: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sub = gaps if gaps.size <= n_sub else rng.choice(gaps, n_sub, replace=False)
    seen: dict[tuple[str, str], float] = {}
    for c in fit.candidates:
        if c.family.endswith("-mixture"):
            continue  # refitting a mixture 99 times is too slow for a summary; no p-value
        key = (c.family, c.method)
        if key not in seen:
            observed = _refit_ks(c.family, c.method, sub, r)
            shape, scale = dist.shape_scale(c.family, c.params)

            def one(g, family=c.family, method=c.method, shape=shape, scale=scale) -> float:
                if r is None:
                    sim = dist.sample(family, dist.named_params(family, shape, scale), g, sub.size)
                else:
                    sim = _simulate_grid_gaps(family, shape, scale, sub.size, r, g)
                return _refit_ks(family, method, sim, r)

            seen[key] = bootstrap_pvalue(observed, one, n_boot, seed)
        assert c.diagnostics is not None  # fit_positive and _fit_grid diagnose every candidate
        c.diagnostics.gof_pvalue = seen[key]
        c.diagnostics.gof_method = (
            f"parametric bootstrap of KS, {n_boot} resamples of n={sub.size} (refit each)"
        )
