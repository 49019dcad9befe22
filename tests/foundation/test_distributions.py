"""The one distribution core (burstlab.distributions): every law evaluated and sampled one way,
checked against SciPy, against its own CDF, and against the numpy streams synth reproduces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st

from burstlab import distributions as dist
from burstlab.errors import UsageError
from burstlab.spec import EmpiricalDist, PointMass

CONTINUOUS = {
    "exponential": {"scale": 2.0},
    "gamma": {"a": 0.5, "scale": 3.0},
    "weibull": {"c": 0.7, "scale": 2.0},
    "lognormal": {"s": 1.2, "scale": 0.8},
    "pareto": {"b": 3.0, "scale": 1.5},
    "lomax": {"c": 3.5, "scale": 2.0},
    "lognormal-mixture": {
        "w_1": 0.3,
        "s_1": 0.5,
        "scale_1": 0.02,
        "w_2": 0.7,
        "s_2": 1.2,
        "scale_2": 0.1,
    },
}


@pytest.mark.parametrize("family", list(CONTINUOUS))
def test_sampler_ppf_cdf_and_mean_describe_one_law(family):
    params = CONTINUOUS[family]
    x = dist.sample(family, params, np.random.default_rng(0), 200_000)
    # the sampler draws the law the cdf describes (KS at n = 2e5: 1 % is > 4 s.e.)
    assert st.kstest(x, lambda v: dist.cdf(family, params, v)).statistic < 0.01
    assert x.mean() == pytest.approx(dist.mean(family, params), rel=0.03)
    # the ppf inverts the cdf, and sf is its complement
    u = np.array([1e-6, 0.01, 0.3, 0.5, 0.9, 0.999])
    q = dist.ppf(family, params, u)
    np.testing.assert_allclose(dist.cdf(family, params, q), u, rtol=1e-9)
    np.testing.assert_allclose(dist.sf(family, params, q), 1 - u, rtol=1e-8)


@pytest.mark.parametrize("family", ["exponential", "gamma", "weibull", "lognormal"])
def test_closed_forms_equal_scipy(family):
    params = CONTINUOUS[family]
    shape, scale = dist.shape_scale(family, params)
    assert dist.named_params(family, shape, scale) == params
    frozen = getattr(st, dist.FAMILIES[family][0])(**params)
    x = np.geomspace(1e-4, 100, 200)
    np.testing.assert_allclose(
        dist.positive_cdf(family, shape, scale, x), frozen.cdf(x), rtol=1e-13
    )
    np.testing.assert_allclose(dist.positive_sf(family, shape, scale, x), frozen.sf(x), rtol=1e-12)
    assert scale * dist.scale_one_mean(family, shape) == pytest.approx(frozen.mean(), rel=1e-14)


def test_sampler_streams_are_numpy_native():
    """synth's seeded streams: each family is numpy's own generator times the scale, so a
    seed reproduces the same numbers in any version that keeps this contract."""
    n = 5
    got = dist.sample("gamma", {"a": 0.5, "scale": 2.0}, np.random.default_rng(3), n)
    assert np.array_equal(got, 2.0 * np.random.default_rng(3).standard_gamma(0.5, n))
    got = dist.sample("weibull", {"c": 0.7, "scale": 2.0}, np.random.default_rng(3), n)
    assert np.array_equal(got, 2.0 * np.random.default_rng(3).weibull(0.7, n))
    got = dist.sample("pareto", {"b": 3.0, "scale": 1.5}, np.random.default_rng(3), n)
    assert np.array_equal(got, 1.5 * (1.0 + np.random.default_rng(3).pareto(3.0, n)))
    # a mixture: one uniform per draw picks the component, then each component's draws
    rng = np.random.default_rng(4)
    which = np.searchsorted([0.3, 1.0], rng.random(n), side="right")
    first = 0.02 * np.exp(0.5 * rng.standard_normal(int((which == 0).sum())))
    mix = dist.sample(
        "lognormal-mixture", CONTINUOUS["lognormal-mixture"], np.random.default_rng(4), n
    )
    assert np.array_equal(mix[which == 0], first)


def test_geometric_counts_turns():
    x = dist.sample("geometric", {"p": 0.25}, np.random.default_rng(1), 100_000)
    assert x.min() == 1 and x.mean() == pytest.approx(4.0, rel=0.02)
    assert np.mean(x == 1) == pytest.approx(0.25, abs=0.005)
    assert dist.pdf("geometric", {"p": 0.25}, np.array([1.0, 2.0])) == pytest.approx([0.25, 0.1875])


def test_means_finite_and_infinite():
    assert dist.mean("pareto", {"b": 0.8, "scale": 1.0}) == math.inf
    with pytest.raises(UsageError, match="no finite positive mean") as info:
        dist.finite_mean("pareto", {"b": 0.8, "scale": 1.0})
    assert info.value.param == "params"
    assert dist.finite_mean("gamma", {"a": 2.0, "scale": 3.0}) == pytest.approx(6.0)


def test_bad_family_names_are_usage_errors():
    with pytest.raises(UsageError, match="unknown family 'cauchy'") as info:
        dist.cdf("cauchy", {}, 1.0)
    assert info.value.param == "family"
    with pytest.raises(UsageError, match="no \\(shape, scale\\) form"):
        dist.scale_one_mean("pareto", 2.0)
    with pytest.raises(UsageError, match="no single scipy distribution"):
        dist.frozen("lognormal-mixture", CONTINUOUS["lognormal-mixture"])


def _gap_law() -> EmpiricalDist:
    """Ties (20 % at exactly 0), then log-uniform bins: 0.5 on [1, 10) s, 0.3 on [10, 100) s."""
    return EmpiricalDist([1.0, 10.0, 100.0], [0.5, 0.3], [PointMass(0.0, 0.2)])


def test_empirical_ppf_atom_at_zero_and_bins():
    law = _gap_law()
    u = np.random.default_rng(0).random(100_000)
    x = dist.empirical_ppf(law, u)
    assert np.all(x[u < 0.2] == 0.0)  # exactly 0.0, not a tiny positive number
    assert np.all((x[u >= 0.2] >= 1.0) & (x[u >= 0.2] <= 100.0))
    # log-uniform inside a bin: u = 0.2 + 0.5 · ln(x)/ln(10) on [1, 10)
    v = np.array([0.2, 0.3, 0.45, 0.699999, 0.7, 0.85, 0.999999])
    exact = np.where(v < 0.7, 10 ** ((v - 0.2) / 0.5), 10 * 10 ** ((v - 0.7) / 0.3))
    np.testing.assert_allclose(dist.empirical_ppf(law, v), exact, rtol=1e-13)
    np.testing.assert_allclose(dist.empirical_cdf(law, exact[1:]), v[1:], rtol=1e-13)
    # mean: 0.5 · 9/ln 10 + 0.3 · 90/ln 10 (log-uniform bins), ties count 0
    assert dist.empirical_mean(law) == pytest.approx((0.5 * 9 + 0.3 * 90) / math.log(10))


def test_empirical_atoms_are_exact_and_laws_are_cached_by_content():
    law = EmpiricalDist([5.0, 50.0], [0.7], [PointMass(20.0, 0.2), PointMass(50.0, 0.1)])
    u = np.random.default_rng(1).random(50_000)
    x = dist.empirical_ppf(law, u)
    assert np.mean(x == 20.0) == pytest.approx(0.2, abs=0.01)
    assert np.mean(x == 50.0) == pytest.approx(0.1, abs=0.01)
    law.point_masses[0] = PointMass(30.0, 0.2)  # the dataclass is mutable: no stale table
    assert np.mean(dist.empirical_ppf(law, u) == 30.0) == pytest.approx(0.2, abs=0.01)


def test_sorted_draws_are_ordered_draws_of_the_law():
    law = _gap_law()
    x = dist.sorted_draws(law, 50_000, np.random.default_rng(2))
    assert np.all(np.diff(x) >= 0)
    assert np.mean(x == 0.0) == pytest.approx(0.2, abs=0.01)
    assert st.kstest(x[x > 0], lambda v: (dist.empirical_cdf(law, v) - 0.2) / 0.8).statistic < 0.01


def test_linear_table_is_np_interp():
    rng = np.random.default_rng(3)
    knots = np.sort(np.concatenate([[0.0, 1.0], rng.random(300), [0.5, 0.5]]))
    values = np.cumsum(rng.random(knots.size))
    u = np.concatenate([rng.random(100_000), np.linspace(0, 1, 1001)])
    table = dist.LinearTable.build(knots, values)
    np.testing.assert_allclose(table(u), np.interp(u, knots, values), rtol=1e-13, atol=1e-13)


def test_round_clip_in_place():
    x = np.array([0.4, 2.5, 3.5, 7.6, 1e9])
    out = dist.round_clip(x, 1.0, 100.0)
    assert out is x and x.tolist() == [1.0, 2.0, 4.0, 8.0, 100.0]
    assert dist.round_clip(np.float64(2.6), 0.0, 10.0) == 3.0


def test_a_mean_beyond_the_float_range_is_inf_not_an_overflow():
    """A lognormal σ of 40 (gaps from 1e-300 s to a week): math.exp(800) raised OverflowError
    from inside a fit; the mean is inf (no finite mean), which callers already handle."""
    assert dist.scale_one_mean("lognormal", 40.0) == math.inf
    assert dist.scale_one_mean("weibull", 1e-3) == math.inf
    assert dist.scale_one_mean("lognormal", 1.0) == pytest.approx(math.exp(0.5))
