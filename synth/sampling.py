"""Fast, seeded draws from the spec's fitted families (numpy, no scipy per-call overhead).

`FamilyFit.sample` in fitting/spec.py goes through scipy's ppf (mixtures by bisection): right
for a copula, too slow for 5 M requests/s of gaps. Here each family maps to numpy's native
generator with the same SciPy parameterisation (loc = 0); mixtures pick a component per draw.
"""

from __future__ import annotations

import math

import numpy as np

from burstlab.errors import SpecError
from burstlab.spec import FamilyFit


def _draw(rng: np.random.Generator, family: str, p: dict[str, float], n: int) -> np.ndarray:
    if family == "exponential":
        return p["scale"] * rng.standard_exponential(n)
    if family == "gamma":
        return p["scale"] * rng.standard_gamma(p["a"], n)
    if family == "weibull":
        return p["scale"] * rng.weibull(p["c"], n)
    if family == "lognormal":
        return p["scale"] * np.exp(p["s"] * rng.standard_normal(n))
    if family == "pareto":  # scipy pareto: x ≥ scale; numpy's pareto is Lomax, so shift by 1
        return p["scale"] * (1.0 + rng.pareto(p["b"], n))
    if family == "lomax":
        return p["scale"] * rng.pareto(p["c"], n)
    if family == "geometric":
        return rng.geometric(p["p"], n).astype(np.float64)
    raise SpecError(f"cannot sample family {family!r}")


def sample_family(rng: np.random.Generator, fit: FamilyFit, n: int) -> np.ndarray:
    """`n` draws from `fit` (any family of fitting.spec.FAMILIES, mixtures included)."""
    comps = fit.components()
    if len(comps) == 1:
        return _draw(rng, comps[0][1], comps[0][2], n)
    weights = np.array([w for w, _, _ in comps])
    which = np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(n), side="right")
    which = np.minimum(which, len(comps) - 1)
    out = np.empty(n)
    for i, (_, family, params) in enumerate(comps):
        mask = which == i
        out[mask] = _draw(rng, family, params, int(mask.sum()))
    return out


def unit_mean(fit: FamilyFit) -> float:
    """The mean a family's draws are divided by to make unit-mean gaps (SpecError if infinite:
    a gap law without a mean has no rate, so it cannot be time-changed by a rate curve)."""
    mean = fit.mean()
    if not (math.isfinite(mean) and mean > 0):
        raise SpecError(
            f"{fit.family} {fit.params} has no finite mean; cannot use it as a gap distribution"
        )
    return mean
