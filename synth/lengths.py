"""Token lengths from a LengthSpec: marginals joined by a Gaussian copula, coupled to load.

Input and output are drawn through their inverse CDFs from correlated normal scores (the
fitted copula ρ), so each marginal is exactly the fitted one and Spearman(input, output) is
the fitted one. Then output lengths are scaled per load window by k**elasticity (k = the
window's request count ÷ the mean count), renormalised to keep the overall mean: on Azure 2023
conv, busy minutes have shorter outputs, and a replay that ignores it over-loads the decode
phase exactly when the server is busiest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from burstlab.fitting.spec import LengthSpec, LoadCoupling
from scipy.special import ndtr

_U_EPS = 1e-12


@dataclass(frozen=True)
class Lengths:
    """Generated per-request lengths (tokens) and failure flags, aligned with the arrivals."""

    input_tokens: np.ndarray
    output_tokens: np.ndarray
    failed: np.ndarray


def copula_uniforms(rng: np.random.Generator, rho: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` pairs of uniforms whose normal scores have correlation `rho` (Gaussian copula)."""
    z1 = rng.standard_normal(n)
    z2 = rho * z1 + math.sqrt(max(0.0, 1.0 - rho * rho)) * rng.standard_normal(n)
    return (
        np.clip(ndtr(z1), _U_EPS, 1 - _U_EPS),
        np.clip(ndtr(z2), _U_EPS, 1 - _U_EPS),
    )


def load_factors(arrival_s: np.ndarray, coupling: LoadCoupling) -> np.ndarray:
    """Per-request multiplier k**elasticity of its window's load, with mean 1 over requests.

    k = count in the request's `coupling.window_s` window ÷ the mean count of non-empty
    windows (the same normalisation the fit uses: an empty window has no mean length)."""
    if arrival_s.size == 0:
        return np.ones(0)
    idx = np.floor(arrival_s / coupling.window_s).astype(np.int64)
    idx -= idx.min()
    counts = np.bincount(idx)
    k = counts[idx] / counts[counts > 0].mean()
    f = k**coupling.elasticity
    return f / f.mean()


def sample_lengths(
    rng: np.random.Generator,
    spec: LengthSpec,
    arrival_s: np.ndarray,
    *,
    failures: bool = False,
    load_coupling: bool = True,
) -> Lengths:
    """Input/output tokens for requests arriving at `arrival_s` (seconds).

    Outputs are clipped to the marginal's [min, max] after the load scaling, then input and
    output to the context limit (input + output ≤ limit, output ≥ 1). With `failures`, a share
    `spec.failure_rate` of requests is marked failed with output 0, as the source does.
    """
    n = arrival_s.size
    rho = spec.dependence.copula.rho if spec.dependence.copula.kind == "gaussian" else 0.0
    u_in, u_out = copula_uniforms(rng, rho, n)
    inp = spec.input.ppf(u_in)
    out = spec.output.ppf(u_out)
    coupling = spec.dependence.load_coupling
    if load_coupling and coupling is not None and coupling.elasticity != 0.0:
        out = np.clip(
            np.rint(out * load_factors(arrival_s, coupling)), spec.output.min, spec.output.max
        )
    if spec.context_limit:
        limit = float(spec.context_limit)
        inp = np.minimum(inp, limit - 1)
        out = np.clip(np.minimum(out, limit - inp), 1, None)
    failed = np.zeros(n, dtype=bool)
    if failures and spec.failure_rate > 0:
        failed = rng.random(n) < spec.failure_rate
        out = np.where(failed, 0, out)
    return Lengths(inp.astype(np.int32), out.astype(np.int32), failed)
