"""Token-length models: parametric families, an empirical model with point masses, dependence.

Token counts are integers, so every family is fitted by the likelihood of the integer it
produced — P(X = k) = [S(k − ½) − S(k + ½)] / S(½) on k ≥ 1 — rather than by treating tokens
as continuous (which rewards densities that spike between integers on short outputs). Zeros
(failed requests) and a cap (``max_tokens``: a value far more frequent than its neighbours)
are point masses, not part of any family. Families: gamma, Weibull, lognormal, a two-component
lognormal mixture (EM in log space), and a Pareto tail index (Hill estimator on the top 5 %)
reported beside them. The empirical model — a log-space histogram with unit-wide bins for
small values — is what synth samples from by default; the families are there to summarise and
to extrapolate.

Dependence: Spearman's ρ and the Gaussian-copula ρ (correlation of normal scores) between
input and output; and lengths vs load — per window, the correlation between the request count
and the mean output length (the Azure 2023 conversation trace has strongly negative values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import scipy.optimize as opt
import scipy.stats as st

from burstlab import distributions as dist
from burstlab.errors import FitError, SchemaError
from burstlab.fitting import families as fam
from burstlab.fitting.select import Selection, audit, information, ks_ad_from_cdf
from burstlab.results import Result, Summary
from burstlab.spec import (
    Copula,
    Dependence,
    EmpiricalDist,
    FamilyFit,
    FitDiagnostics,
    LengthSpec,
    LoadCoupling,
    Marginal,
    PointMass,
)
from burstlab.stats import busy_windows

LENGTH_FAMILIES = ("gamma", "weibull", "lognormal")
#: A value is a cap (point mass) when it is the maximum, holds ≥ 0.5 % of the rows and is
#: ≥ 5× as frequent as the average value in the 10 % below it.
CAP_MIN_SHARE = 0.005
#: Windows (seconds) at which length-vs-load coupling is measured; 60 s goes in the spec.
LOAD_WINDOWS = (10.0, 30.0, 60.0, 120.0, 300.0)
SPEC_LOAD_WINDOW = 60.0


def _discrete_cdf_parts(family: str, params: dict[str, float], kv: np.ndarray):
    fit = FamilyFit(family, params, "")
    lo = 1.0 - fit.cdf(kv - 0.5)
    hi = 1.0 - fit.cdf(kv + 0.5)
    norm = 1.0 - float(fit.cdf(np.array([0.5]))[0])
    return lo, hi, norm


def discrete_loglik(family: str, params: dict[str, float], kv: np.ndarray, w: np.ndarray) -> float:
    """Σ w log P(X = k), P(k) = [S(k − ½) − S(k + ½)] / S(½) for integers k ≥ 1."""
    if family in dist.SHAPE_NAME or family == "exponential":
        shape, scale = dist.shape_scale(family, params)
        lo = dist.positive_sf(family, shape, scale, kv - 0.5)
        hi = dist.positive_sf(family, shape, scale, kv + 0.5)
        norm = float(dist.positive_sf(family, shape, scale, np.array([0.5]))[0])
    else:
        lo, hi, norm = _discrete_cdf_parts(family, params, kv)
    p = np.maximum(lo - hi, 1e-300) / max(norm, 1e-300)
    return float(np.dot(w, np.log(p)))


def _ks_ad_discrete(fit: FamilyFit, kv: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    norm = 1.0 - float(fit.cdf(np.array([0.5]))[0])
    return ks_ad_from_cdf(w, (fit.cdf(kv + 0.5) - (1.0 - norm)) / norm, float(w.sum()))


def _diagnostics(fit: FamilyFit, kv: np.ndarray, w: np.ndarray, k: int) -> FitDiagnostics:
    ll = discrete_loglik(fit.family, fit.params, kv, w)
    aic, bic = information(ll, k, float(w.sum()))
    ks, ad = _ks_ad_discrete(fit, kv, w)
    mean = float(np.dot(kv, w) / w.sum())
    return FitDiagnostics(int(w.sum()), k, ll, aic, bic, ks, ad, mean_ratio=fit.mean() / mean)


def _fit_family(family: str, kv: np.ndarray, w: np.ndarray) -> FamilyFit:
    s = fam.Sample.weighted(kv, w)
    shape0, scale0 = fam.mle(family, s)

    def nll(theta: np.ndarray) -> float:
        params = dist.named_params(family, math.exp(theta[0]), math.exp(theta[1]))
        return -discrete_loglik(family, params, kv, w)

    res = opt.minimize(
        nll,
        np.log([shape0, scale0]),
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 3000},
    )
    params = dist.named_params(family, math.exp(res.x[0]), math.exp(res.x[1]))
    fit = FamilyFit(family, params, "discrete-mle")
    fit.diagnostics = _diagnostics(fit, kv, w, 2)
    return fit


def _fit_lognormal_mixture(kv: np.ndarray, w: np.ndarray) -> FamilyFit:
    """Two-component lognormal mixture by weighted EM in log space
    (`families.lognormal_mixture_em`), scored with the same discrete likelihood as the
    families."""
    params, _ = fam.lognormal_mixture_em(kv, w)
    fit = FamilyFit("lognormal-mixture", params, "em-log-space")
    fit.diagnostics = _diagnostics(fit, kv, w, 5)
    return fit


def hill_tail(values: np.ndarray, share: float = 0.05, min_n: int = 50) -> FamilyFit | None:
    """Pareto tail index by the Hill estimator on the top ``share`` of values (None if fewer
    than ``min_n`` of them). b = 1 / mean log(x / x_min); stderr b/√n."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    k = int(x.size * share)
    if k < min_n:
        return None
    top = x[-k:]
    xmin = float(x[-k - 1])
    logs = np.log(top / xmin)
    if xmin <= 0 or logs.mean() <= 0:
        return None
    b = 1.0 / float(logs.mean())
    diag = FitDiagnostics(n=k, k=1, loglik=None, aic=None, bic=None)
    return FamilyFit(
        "pareto",
        {"b": b, "scale": xmin},
        f"hill (top {share:.0%})",
        diag,
        stderr={"b": b / math.sqrt(k)},
    )


def empirical_model(
    kv: np.ndarray, w: np.ndarray, n_total: float, masses: Sequence[PointMass], per_decade: int = 40
) -> EmpiricalDist:
    """Log-space histogram of integer values with half-integer edges (unit-wide bins while the
    log grid is finer than one token), so sampling then rounding returns the right integers."""
    top = float(kv.max()) if kv.size else 1.0
    decades = max(math.log10(top + 0.5) - math.log10(0.5), 1e-9)
    grid = np.geomspace(0.5, top + 0.5, int(decades * per_decade) + 2)
    edges = np.unique(np.concatenate(([0.5], np.floor(grid) + 0.5)))
    edges = edges[edges <= top + 0.5]
    if edges[-1] < top + 0.5:
        edges = np.append(edges, top + 0.5)
    counts = np.histogram(kv, bins=edges, weights=w)[0] if kv.size else np.zeros(edges.size - 1)
    probs = counts / n_total
    return EmpiricalDist(
        edges=[float(e) for e in edges], probs=[float(p) for p in probs], point_masses=list(masses)
    )


@dataclass
class LengthFit:
    """Fits of one length column (tokens): families, point masses, empirical model, tail."""

    column: str
    n: int
    selection: Selection
    empirical: EmpiricalDist
    point_masses: list[PointMass]
    min: float
    max: float
    mean: float
    tail: FamilyFit | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> FamilyFit | None:
        """The lowest-BIC family (None when too few distinct values to fit one)."""
        return self.selection.best if self.selection.candidates else None

    def table(self) -> pl.DataFrame:
        return self.selection.table() if self.selection.candidates else pl.DataFrame()

    def to_marginal(self) -> Marginal:
        cands = list(self.selection.candidates) + ([self.tail] if self.tail else [])
        return Marginal(
            empirical=self.empirical,
            min=self.min,
            max=self.max,
            mean=self.mean,
            chosen=self.best,
            candidates=cands,
            use="empirical",
        )


def fit_length(values: np.ndarray, column: str = "tokens") -> LengthFit:
    """Fit one integer length column (tokens ≥ 0)."""
    x = np.asarray(values)
    x = x[~np.isnan(x)] if x.dtype.kind == "f" else x
    if x.size == 0:
        raise SchemaError(f"{column}: no values to fit")
    if np.any(x < 0):
        raise SchemaError(f"{column}: lengths must be ≥ 0, found min {x.min()}")
    x = np.rint(x).astype(np.int64)
    if int(x.max()) <= 4 * x.size + (1 << 20):
        counts = np.bincount(x)
        kv = np.nonzero(counts)[0]
        weights = counts[kv].astype(np.float64)
    else:  # a few huge values (near the int32 limit): no dense table of every count up to them
        kv, counts = np.unique(x, return_counts=True)
        weights = counts.astype(np.float64)
    fit = fit_counts(kv, weights, column)
    fit.tail = hill_tail(x[x > 0])
    return fit


def fit_counts(values: np.ndarray, weights: np.ndarray, column: str = "tokens") -> LengthFit:
    """Fit integer lengths given as distinct values and their (possibly fractional) counts —
    e.g. a published probability table times the number of requests it describes."""
    kv_all = np.rint(np.asarray(values)).astype(np.int64)
    w_all = np.asarray(weights, dtype=np.float64)
    keep = w_all > 0
    kv_all, w_all = kv_all[keep], w_all[keep]
    if kv_all.size == 0:
        raise SchemaError(f"{column}: no values to fit")
    order = np.argsort(kv_all)
    kv_all, w_all = kv_all[order], w_all[order]
    n = float(w_all.sum())
    masses: list[PointMass] = []
    notes = []
    zero = float(w_all[kv_all == 0].sum())
    if zero > 0:
        masses.append(PointMass(0.0, zero / n))
        notes.append(f"{zero:g} zero values ({zero / n:.2%}) kept as a point mass")
    top = int(kv_all.max())
    at_top = float(w_all[-1])
    near = w_all[(kv_all >= int(top * 0.9)) & (kv_all < top)]
    per_value = near.sum() / max(top - int(top * 0.9), 1)
    if top > 0 and kv_all.size == 1:  # constant data: the model is that one value
        masses.append(PointMass(float(top), 1.0))
        notes.append(f"{column}: every value is {top}, a single point mass")
    elif top > 1 and at_top / n >= CAP_MIN_SHARE and at_top >= 5 * max(per_value, 1e-9):
        masses.append(PointMass(float(top), at_top / n))
        notes.append(f"{at_top:g} values ({at_top / n:.2%}) at the cap {top}")
    mass_values = {int(m.value) for m in masses}
    keep = np.array([int(k) not in mass_values for k in kv_all], dtype=bool)
    kv, w = kv_all[keep].astype(np.float64), w_all[keep]
    cands = [_fit_family(f, kv, w) for f in LENGTH_FAMILIES] if kv.size >= 2 else []
    if kv.size >= 10:
        cands.append(_fit_lognormal_mixture(kv, w))
    return LengthFit(
        column=column,
        n=round(n),
        selection=Selection(cands, "bic"),
        empirical=empirical_model(kv, w, n, masses),
        point_masses=masses,
        min=float(kv_all.min()),
        max=float(top),
        mean=float(np.dot(kv_all, w_all) / n),
        notes=notes,
    )


def normal_scores(x: np.ndarray) -> np.ndarray:
    """Φ⁻¹ of mid-ranks (ties averaged): the Gaussian-copula scale of a sample."""
    r = st.rankdata(x)
    return st.norm.ppf((r - 0.5) / x.size)


def load_coupling(
    arrival_s: np.ndarray, lengths: np.ndarray, windows: Sequence[float] = LOAD_WINDOWS
) -> pl.DataFrame:
    """Per window size: correlation of request count and mean length over non-empty windows.

    Columns: window_s, n_windows, corr (Pearson), spearman, elasticity (slope of log mean
    length on log(count / mean count))."""
    rows = []
    for w in windows:
        c, m = busy_windows(arrival_s, lengths, w)
        if c.size < 5 or np.all(c == c[0]) or np.all(m == m[0]):
            continue  # no correlation with a constant side (0/0)
        pos = m > 0
        slope = (
            float(np.polyfit(np.log(c[pos] / c.mean()), np.log(m[pos]), 1)[0])
            if pos.sum() >= 3
            else math.nan
        )
        rows.append(
            {
                "window_s": float(w),
                "n_windows": int(c.size),
                "corr": float(np.corrcoef(c, m)[0, 1]),
                # SciPy builds its result classes at run time: pyright sees no `statistic`
                "spearman": float(st.spearmanr(c, m).statistic),  # pyright: ignore[reportAttributeAccessIssue]
                "elasticity": slope,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "window_s": pl.Float64,
            "n_windows": pl.Int64,
            "corr": pl.Float64,
            "spearman": pl.Float64,
            "elasticity": pl.Float64,
        },
    )


def load_significant(row: dict, z: float = 2.576) -> bool:
    """Is a window's count-vs-length correlation real? Fisher's z test at the two-sided 1 %
    level: |atanh(r)|·√(n − 3) > 2.576. A correlation from 17 windows of a 15-minute sample
    is noise, and synth should not imprint it on every workload."""
    r, n = row["corr"], row["n_windows"]
    if r is None or not math.isfinite(r) or n < 5:
        return False
    return abs(math.atanh(max(min(r, 0.999999), -0.999999))) * math.sqrt(n - 3) > z


@dataclass
class LengthsFit(Result):
    """Input and output fits plus their dependence and length-vs-load coupling."""

    input: LengthFit
    output: LengthFit
    spearman: float
    copula_rho: float  # 0.0 when not measurable (see `independent`)
    load: pl.DataFrame  # output length vs load, by window
    failure_rate: float
    context_limit: int | None = None
    #: no dependence is measurable (a constant side, fewer than 3 pairs): the spec's copula is
    #: ``independent`` with ρ 0 and Spearman 0
    independent: bool = False

    def table(self) -> pl.DataFrame:
        """Every candidate of both columns (a ``column`` column says which)."""
        parts = [
            part.table().with_columns(pl.lit(part.column).alias("column"))
            for part in (self.input, self.output)
            if part.selection.candidates
        ]
        return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()

    def summary(self) -> Summary:
        rho = "independent" if self.independent else f"{self.copula_rho:.3f}"
        s = Summary(
            f"token lengths: Spearman(input, output) {self.spearman:.3f}, copula ρ "
            f"{rho}, failure rate {self.failure_rate:.3%}"
        )
        for part in (self.input, self.output):
            s.add(f"{part.column} candidates", audit(part.table()))
        s.add("output length vs load, by window", self.load)
        s.notes.extend([*self.input.notes, *self.output.notes])
        return s

    def to_dict(self) -> dict[str, Any]:
        return {
            "spearman": self.spearman,
            "copula_rho": self.copula_rho,
            "independent": self.independent,
            "failure_rate": self.failure_rate,
            "context_limit": self.context_limit,
            "candidates": self.table().to_dicts(),
            "load": self.load.to_dicts(),
        }

    def to_spec(self) -> LengthSpec:
        coupling = None
        row = self.load.filter(pl.col("window_s") == SPEC_LOAD_WINDOW)
        if row.is_empty() and not self.load.is_empty():
            row = self.load.head(1)
        if not row.is_empty() and load_significant(row.row(0, named=True)):
            r = row.row(0, named=True)
        else:
            r = None
        if r is not None and r["elasticity"] is not None and math.isfinite(r["elasticity"]):
            coupling = LoadCoupling(
                window_s=r["window_s"],
                corr=r["corr"],
                elasticity=r["elasticity"],
                n_windows=r["n_windows"],
                target="output_tokens",
                spearman=r["spearman"],
            )
        return LengthSpec(
            input=self.input.to_marginal(),
            output=self.output.to_marginal(),
            dependence=Dependence(
                spearman=self.spearman,
                copula=(
                    Copula("independent", 0.0)
                    if self.independent
                    else Copula("gaussian", self.copula_rho)
                ),
                load_coupling=coupling,
            ),
            context_limit=self.context_limit,
            failure_rate=self.failure_rate,
        )


def dependence(inp: np.ndarray, out: np.ndarray) -> tuple[float, float] | None:
    """(Spearman ρ, Gaussian-copula ρ) of paired input and output lengths, each in [−1, 1]
    (perfect rank dependence gives ±1).

    None when undefined: either side takes a single value (a correlation of constant data is
    0/0) or there are fewer than 3 pairs — no dependence is measurable, and the spec says so
    with an ``independent`` copula."""
    if inp.size < 3 or np.all(inp == inp[0]) or np.all(out == out[0]):
        return None
    # SciPy builds its result classes at run time: pyright sees no `statistic`
    spearman = float(st.spearmanr(inp, out).statistic)  # pyright: ignore[reportAttributeAccessIssue]
    rho = float(np.corrcoef(normal_scores(inp), normal_scores(out))[0, 1])
    return float(np.clip(spearman, -1.0, 1.0)), float(np.clip(rho, -1.0, 1.0))


def _max_total(inp: np.ndarray, out: np.ndarray) -> int | None:
    """Largest input + output seen (tokens), ignoring rows with a missing count; None when
    there is none, or it is 0 (every request empty: no limit was seen)."""
    total = np.asarray(inp, dtype=np.float64) + np.asarray(out, dtype=np.float64)
    total = total[np.isfinite(total)]
    return int(total.max()) if total.size and total.max() >= 1 else None


def fit_lengths(frame: pl.DataFrame | pl.LazyFrame) -> LengthsFit:
    """Fit input and output token lengths of a canonical ``requests`` table.

    Failed requests (``failed = true``) count toward ``failure_rate``; the output fit uses
    successful requests only (a failed request's 0 output says nothing about lengths), the
    input fit uses all rows.
    """
    lf = frame.lazy()
    need = ["arrival_s", "input_tokens", "output_tokens"]
    have = lf.collect_schema().names()
    missing = [c for c in need if c not in have]
    if missing:
        raise SchemaError(f"a requests table needs {need}; missing {missing}")
    cols = [*need, "failed"] if "failed" in have else need
    df = lf.select(cols).sort("arrival_s").collect()
    failed = (
        df["failed"].fill_null(False).to_numpy()
        if "failed" in df.columns
        else np.zeros(df.height, bool)
    )
    ok = ~failed
    if df.height and not ok.any():
        raise FitError(
            f"all {df.height} requests are marked failed: no output length to fit "
            "(a failed request's output says nothing about lengths)"
        )
    inp = df["input_tokens"].to_numpy()
    out = df["output_tokens"].to_numpy()
    both = ok & (inp > 0) & (out > 0)
    measured = dependence(inp[both], out[both])
    spearman, rho = measured or (0.0, 0.0)
    t = df["arrival_s"].to_numpy()
    return LengthsFit(
        input=fit_length(inp, "input_tokens"),
        output=fit_length(out[ok], "output_tokens"),
        spearman=spearman,
        copula_rho=rho,
        independent=measured is None,
        load=load_coupling(t[ok], out[ok]),
        failure_rate=float(failed.mean()) if failed.size else 0.0,
        context_limit=_max_total(inp, out),
    )
