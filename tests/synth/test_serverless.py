"""Serverless: invocations per minute, and cold starts from a keep-alive policy."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from synth_specs import make_spec

from burstlab.spec import FamilyFit
from burstlab.synth.serverless import (
    cold_start_stats,
    cold_starts,
    function_arrivals,
    invocations_table,
    spread_minutes,
)


def _poisson(rate: float):
    spec = make_spec("renewal", regime=False)
    spec.arrivals.renewal = FamilyFit("exponential", {"scale": 1 / rate}, "given")
    return spec


def test_cold_share_matches_poisson_theory():
    """Poisson at λ with keep-alive K: an invocation is cold iff its gap > K, P = e^{−λK}."""
    specs = {"f1": _poisson(0.01), "f2": _poisson(0.05)}
    arr = function_arrivals(specs, 400_000, seed=3)
    cold = cold_starts(arr, keep_alive_s=60.0, source="test")
    for name, lam in (("f1", 0.01), ("f2", 0.05)):
        n = arr.filter(pl.col("function") == name).height
        c = cold.filter(pl.col("function") == name).height
        p = math.exp(-lam * 60)
        assert c / n == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n) + 1 / n)
    assert cold["total_s"].is_nan().all()


def test_invocations_round_trip_and_cold_times():
    arr = function_arrivals({"a": _poisson(0.02), "b": _poisson(0.05)}, 36_000, seed=1)
    inv = invocations_table(arr, "synth:test")
    assert inv["count"].sum() == arr.height
    assert set(inv["function"]) == {"a", "b"}
    assert inv["minute"].max() == 599
    spread = spread_minutes(inv, seed=2)
    assert spread.height == arr.height
    # the same minute counts come back
    again = invocations_table(spread, "synth:test")
    assert again.select("function", "minute", "count").equals(
        inv.select("function", "minute", "count")
    )
    lognorm = FamilyFit("lognormal", {"s": 1.0, "scale": 2.0}, "given")
    cold = cold_starts(arr, 30.0, source="synth:test", cold_start_time=lognorm, seed=1)
    assert (cold["total_s"] > 0).all()
    stats = cold_start_stats(cold, arr.height, 36_000)
    assert stats.cold_starts == cold.height
    assert 0 < stats.cold_share < 1
    t = cold["arrival_s"]
    assert stats.iat_mean_s == pytest.approx((t.max() - t.min()) / (cold.height - 1))
    assert stats.cold_starts > 100
    assert np.isfinite(stats.iat_cv)


def test_generated_cold_starts_against_a_fit():
    """Cold starts generated under a keep-alive policy, fitted by fitting/serverless, compared:
    the fitted mean gap and cold-start time agree with the generated table's own."""
    from burstlab.fitting.serverless import fit_cold_starts
    from burstlab.synth.serverless import compare_cold_starts

    arr = function_arrivals({f"f{i}": _poisson(0.01 * (i + 1)) for i in range(5)}, 50_000, seed=2)
    lognorm = FamilyFit("lognormal", {"s": 1.0, "scale": 2.0}, "given")
    cold = cold_starts(arr, 120.0, source="synth:test", cold_start_time=lognorm, seed=3)
    table = compare_cold_starts(cold, fit_cold_starts(cold))
    rows = {r["quantity"]: r for r in table.iter_rows(named=True)}
    for q in ("cold_start", "gap"):
        assert rows[q]["fitted_mean_s"] == pytest.approx(rows[q]["generated_mean_s"], rel=1e-6)
    # lognormal(s=1, scale=2): mean 2·e^0.5 ≈ 3.30 s
    assert rows["cold_start"]["generated_mean_s"] == pytest.approx(2 * math.exp(0.5), rel=0.1)
