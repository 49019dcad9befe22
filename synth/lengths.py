"""Token lengths from a LengthSpec: marginals joined by a Gaussian copula, coupled to load.

Input and output are drawn through their inverse CDFs (`Marginal.ppf`, the distribution
core's one empirical inverse CDF) from correlated normal scores (the fitted copula ρ), so each
marginal is exactly the fitted one and Spearman(input, output) is the fitted one. Then output lengths are scaled per load window by k**elasticity (k = the
window's request count ÷ the mean count), renormalised to keep the overall mean: on Azure 2023
conv, busy minutes have shorter outputs, and a replay that ignores it over-loads the decode
phase exactly when the server is busiest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from burstlab.distributions import round_clip
from burstlab.spec import LengthSpec, LoadCoupling
from burstlab.synth.parallel import map_chunks

_U_EPS = 1e-12


@dataclass(frozen=True)
class Lengths:
    """Generated per-request lengths (tokens) and failure flags, aligned with the arrivals."""

    input_tokens: np.ndarray
    output_tokens: np.ndarray
    failed: np.ndarray


def copula_uniforms(rng: np.random.Generator, rho: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` pairs of uniforms whose normal scores have correlation `rho` (Gaussian copula);
    plain independent uniforms when rho = 0 (same law, a third of the cost)."""
    if rho == 0.0:
        return rng.random(n), rng.random(n)
    z1 = rng.standard_normal(n)
    z2 = rng.standard_normal(n)
    z2 *= math.sqrt(max(0.0, 1.0 - rho * rho))
    z2 += rho * z1
    return ndtr(z1, out=z1), ndtr(z2, out=z2)


def load_factors(arrival_s: np.ndarray, coupling: LoadCoupling) -> np.ndarray:
    """Per-request multiplier k**elasticity of its window's load, with mean 1 over requests.

    k = count in the request's `coupling.window_s` window ÷ the mean count of non-empty
    windows (the same normalisation the fit uses: an empty window has no mean length).
    `arrival_s` must be sorted (seconds)."""
    if arrival_s.size == 0:
        return np.ones(0)
    # arrivals are sorted: count per window by locating the window edges (no pass over n),
    # then spread each window's factor over its run of requests
    w = coupling.window_s
    first = math.floor(arrival_s[0] / w)
    edges = (first + np.arange(math.floor(arrival_s[-1] / w) - first + 2)) * w
    counts = np.diff(np.searchsorted(arrival_s, edges, side="left"))
    busy = counts > 0
    k = counts / counts[busy].mean()
    # k**elasticity in log space, scaled by its largest value before exponentiating, so that
    # any finite elasticity gives finite factors (a huge one puts the load on the busiest
    # windows instead of overflowing)
    e = min(max(coupling.elasticity, -1e100), 1e100)  # |e · ln k| stays finite
    log_f = e * np.log(np.where(busy, k, 1.0))
    per_window = np.exp(log_f - log_f[busy].max())
    per_window /= per_window[busy] @ counts[busy] / arrival_s.size
    return np.repeat(per_window, counts)


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
    coupling = spec.dependence.load_coupling
    factors = None
    if load_coupling and coupling is not None and coupling.elasticity != 0.0:
        factors = load_factors(arrival_s, coupling)
    inp = np.empty(n, dtype=np.int32)
    out = np.empty(n, dtype=np.int32)
    failed = np.zeros(n, dtype=bool)
    limit = float(spec.context_limit) if spec.context_limit else None
    fail_p = spec.failure_rate if failures else 0.0

    def fill(sub: np.random.Generator, a: int, b: int) -> None:
        # everything per chunk, on the chunk's own generator: parallel and seed-stable
        u_in, u_out = copula_uniforms(sub, rho, b - a)
        i = spec.input.ppf(u_in)
        o = spec.output.ppf(u_out)
        if factors is not None:
            o *= factors[a:b]
            round_clip(o, spec.output.min, spec.output.max)
        if limit is not None:
            np.minimum(i, limit - 1, out=i)
            np.minimum(o, limit - i, out=o)
            np.maximum(o, 1, out=o)
        if fail_p > 0:
            f = sub.random(b - a) < fail_p
            o[f] = 0
            failed[a:b] = f
        inp[a:b] = i
        out[a:b] = o

    map_chunks(rng, n, fill)
    return Lengths(inp, out, failed)
