"""Hand-built WorkloadSpecs (imported by the synth tests as `synth_specs`) for generator unit tests (fixtures, not fitted: every number here
is chosen so the test can state what the generator must reproduce)."""

from __future__ import annotations

import numpy as np

from burstlab.spec import (
    ArrivalSpec,
    BurstRegime,
    Copula,
    Dependence,
    EmpiricalDist,
    FamilyFit,
    GroupSpec,
    LengthSpec,
    LoadCoupling,
    Marginal,
    RateCurve,
    SourceFingerprint,
    WorkloadSpec,
)


def marginal(lo: float, hi: float, bins: int = 20) -> Marginal:
    """Log-uniform marginal on [lo, hi] tokens (median = √(lo·hi))."""
    edges = list(np.geomspace(lo, hi, bins + 1))
    return Marginal(EmpiricalDist(edges, [1 / bins] * bins), lo, hi, (hi - lo) / np.log(hi / lo))


def lengths(rho: float = 0.0, elasticity: float = 0.0, **kw) -> LengthSpec:
    coupling = LoadCoupling(60.0, -0.8 if elasticity else 0.0, elasticity, 40)
    return LengthSpec(
        marginal(10, 10_000),
        marginal(5, 2_000),
        Dependence(0.0, Copula("gaussian", rho), coupling),
        **kw,
    )


def gamma_unit(shape: float) -> FamilyFit:
    return FamilyFit("gamma", {"a": shape, "scale": 1 / shape}, "given")


def make_spec(
    model: str = "modulated",
    *,
    rates: list[float] | None = None,
    curve_window_s: float = 60.0,
    regime: bool = True,
    within_shape: float = 1.0,
    rho: float = 0.0,
    elasticity: float = 0.0,
    **length_kw,
) -> WorkloadSpec:
    rates = rates or [4.0, 6.0, 2.0, 8.0, 5.0]
    burst = (
        BurstRegime(
            10.0,
            [0.4, 1.6],  # stationary (0.5, 0.5) → mean level 1
            [[0.8, 0.2], [0.2, 0.8]],
            [0.5, 0.5],
            gamma_unit(within_shape),
        )
        if regime
        else None
    )
    arrivals = ArrivalSpec(
        renewal=FamilyFit("gamma", {"a": within_shape, "scale": 0.2 / within_shape}, "given"),
        model=model,
        rate_curve=RateCurve(curve_window_s, rates),
        burst_regime=burst,
    )
    return WorkloadSpec(
        SourceFingerprint("fixture", 1000, 300.0, 5.0),
        arrivals,
        lengths(rho, elasticity, **length_kw),
    )


def grouped_spec() -> WorkloadSpec:
    a = make_spec("renewal", regime=False)  # 5 req/s
    b = make_spec("renewal", regime=False)
    b.arrivals.renewal = FamilyFit("exponential", {"scale": 1 / 15.0}, "given")  # 15 req/s
    top = make_spec("renewal", regime=False)
    top.arrivals.renewal = FamilyFit("exponential", {"scale": 1 / 20.0}, "given")
    top.groups = [
        GroupSpec("ChatGPT", 0.25, a, key="model"),
        GroupSpec("GPT-4", 0.75, b, key="model"),
    ]
    return top


def session_spec(turns_lo: int = 1, turns_hi: int = 8, think_mean_s: float = 30.0):
    """A spec with sessions: turns log-uniform on [lo, hi], exponential think time."""
    from burstlab.spec import SessionSpec

    spec = make_spec(rates=[5.0], regime=False)
    spec.sessions = SessionSpec(
        100,
        marginal(turns_lo, turns_hi, bins=4),
        FamilyFit("exponential", {"scale": think_mean_s}, "given"),
    )
    return spec
