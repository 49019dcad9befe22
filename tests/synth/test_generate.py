"""Generation from a spec: reproducibility, rates, regimes, knobs, lengths, groups."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from scipy import stats
from synth_specs import gamma_unit, grouped_spec, make_spec

from burstlab.errors import UsageError
from burstlab.stats import dispersion_index, window_counts
from burstlab.synth.generate import generate


def test_same_seed_identical_different_seed_different_but_alike():
    spec = make_spec()
    a = generate(spec, duration_s=3000, seed=7).frame
    b = generate(spec, duration_s=3000, seed=7).frame
    c = generate(spec, duration_s=3000, seed=8).frame
    assert a.equals(b)
    assert not a.equals(c)
    # same statistics: mean rate 5 req/s (curve mean 5, regime mean 1), lengths alike
    for f in (a, c):
        assert f.height / 3000 == pytest.approx(5.0, rel=0.08)
    assert a["output_tokens"].median() == pytest.approx(c["output_tokens"].median(), rel=0.1)
    assert stats.ks_2samp(a["input_tokens"], c["input_tokens"]).statistic < 0.04


def test_source_and_schema():
    spec = make_spec()
    w = generate(spec, duration_s=100, seed=1)
    assert w.frame["source"].unique().to_list() == [f"synth:{spec.sha256()[:12]}"]
    assert w.frame["arrival_s"].is_sorted()
    assert w.frame["arrival_s"].min() >= 0 and w.frame["arrival_s"].max() < 100
    assert w.frame.schema["input_tokens"] == pl.Int32
    assert w.diagnostics["requests"] == w.frame.height


def test_renewal_rate_and_cv():
    """Gamma gaps of shape 0.25: CV = 2, mean gap 0.2 s → 5 req/s."""
    spec = make_spec("renewal", regime=False, within_shape=0.25)
    t = generate(spec, duration_s=20_000, seed=3).frame["arrival_s"].to_numpy()
    g = np.diff(t)
    assert t.size / 20_000 == pytest.approx(5.0, rel=0.03)
    assert g.std() / g.mean() == pytest.approx(2.0, rel=0.05)


def test_rate_curve_is_followed_per_window():
    """Curve 1, 10, 0, 4 req/s over 100 s windows, no regime: counts ≈ 100, 1000, 0, 400."""
    spec = make_spec(rates=[1.0, 10.0, 0.0, 4.0], curve_window_s=100.0, regime=False)
    t = generate(spec, duration_s=400, seed=5).frame["arrival_s"].to_numpy()
    counts = window_counts(t, 100.0, 0.0, 400.0)
    assert counts[2] == 0
    for got, want in zip(counts[[0, 1, 3]], (100, 1000, 400), strict=True):
        assert abs(got - want) < 5 * math.sqrt(want)


def test_regime_raises_dispersion_to_its_theory():
    """Two levels 0.4/1.6 over 10 s windows, flat 5 req/s curve, Poisson within: the
    dispersion of 10 s counts is 1 + 10·5·Var(level) = 1 + 50·0.36 = 19 (chain-independent)."""
    spec = make_spec(rates=[5.0], regime=True)
    t = generate(spec, duration_s=40_000, seed=11).frame["arrival_s"].to_numpy()
    assert dispersion_index(t, 10.0, 0.0, 40_000) == pytest.approx(19.0, rel=0.15)
    flat = make_spec(rates=[5.0], regime=False)
    t0 = generate(flat, duration_s=40_000, seed=11).frame["arrival_s"].to_numpy()
    assert dispersion_index(t0, 10.0, 0.0, 40_000) == pytest.approx(1.0, abs=0.1)


def test_rate_scale_keeps_the_dispersion_curve_shape():
    """Scaling the intensity by c scales the extra-Poisson dispersion by c at every width
    (D − 1 ∝ c·Var(λ)/E(λ)), so the curve keeps its shape; time compression instead shifts it."""
    spec = make_spec(rates=[5.0])
    widths = (10.0, 60.0, 300.0)
    base = generate(spec, duration_s=60_000, seed=2).frame["arrival_s"].to_numpy()
    twice = generate(spec, duration_s=60_000, seed=2, rate_scale=2.0).frame["arrival_s"]
    twice = twice.to_numpy()
    assert twice.size / base.size == pytest.approx(2.0, rel=0.03)
    d1 = np.array([dispersion_index(base, w, 0.0, 60_000) - 1 for w in widths])
    d2 = np.array([dispersion_index(twice, w, 0.0, 60_000) - 1 for w in widths])
    assert d2 / d1 == pytest.approx([2.0] * 3, rel=0.2)
    # shape: the curve normalised by its 10 s value is the same
    assert d2 / d2[0] == pytest.approx(d1 / d1[0], rel=0.2)


def test_speedup_compresses_time():
    spec = make_spec(rates=[5.0])
    w = generate(spec, duration_s=5_000, seed=4, speedup=2.0)
    t = w.frame["arrival_s"].to_numpy()
    assert t.max() < 5_000
    assert t.size / 5_000 == pytest.approx(10.0, rel=0.08)  # twice the rate
    # the 10 s regime windows now last 5 s: dispersion at 5 s ≈ 1 + 5·10·0.36 = 19
    assert dispersion_index(t, 5.0, 0.0, 5_000) == pytest.approx(19.0, rel=0.25)


def test_copula_sets_spearman():
    """Gaussian copula ρ = 0.6 → Spearman = (6/π)·asin(ρ/2) ≈ 0.582 (marginals continuous)."""
    spec = make_spec(rho=0.6)
    f = generate(spec, duration_s=4000, seed=9).frame
    rs = stats.spearmanr(f["input_tokens"], f["output_tokens"]).statistic
    assert rs == pytest.approx(6 / math.pi * math.asin(0.3), abs=0.03)
    # marginals: log-uniform on [10, 10000] → median 316
    assert f["input_tokens"].median() == pytest.approx(316, rel=0.06)


def test_load_coupling_makes_busy_minutes_shorter_and_keeps_mean():
    from burstlab.synth.suite import load_length_corr

    coupled = generate(make_spec(elasticity=-1.0), duration_s=6000, seed=3).frame
    plain = generate(make_spec(elasticity=0.0), duration_s=6000, seed=3).frame
    assert load_length_corr(coupled, 6000) < -0.5
    assert abs(load_length_corr(plain, 6000)) < 0.3
    assert coupled["output_tokens"].mean() == pytest.approx(plain["output_tokens"].mean(), rel=0.1)


def test_context_limit_and_failures():
    spec = make_spec(context_limit=3000, failure_rate=0.1)
    f = generate(spec, duration_s=2000, seed=1, failures=True).frame
    ok = f.filter(~pl.col("failed"))
    assert (ok["input_tokens"] + ok["output_tokens"]).max() <= 3000
    assert ok["output_tokens"].min() >= 1
    share = f["failed"].mean()
    assert share == pytest.approx(0.1, abs=4 * math.sqrt(0.09 / f.height))
    assert (f.filter(pl.col("failed"))["output_tokens"] == 0).all()
    assert generate(spec, duration_s=2000, seed=1).frame["failed"].sum() == 0


def test_groups_mix_and_label():
    spec = grouped_spec()
    w = generate(spec, duration_s=2000, seed=1)
    by = dict(w.frame.group_by("model").len().iter_rows())
    assert by["ChatGPT"] / 2000 == pytest.approx(5.0, rel=0.08)
    assert by["GPT-4"] / 2000 == pytest.approx(15.0, rel=0.05)
    # new mix 50/50 at the same total rate (20 req/s): 10 + 10
    m = generate(spec, duration_s=2000, seed=1, group_mix={"ChatGPT": 1, "GPT-4": 1})
    by = dict(m.frame.group_by("model").len().iter_rows())
    assert by["ChatGPT"] / 2000 == pytest.approx(10.0, rel=0.06)
    assert by["GPT-4"] / 2000 == pytest.approx(10.0, rel=0.06)
    assert m.frame["arrival_s"].is_sorted()
    with pytest.raises(UsageError, match="not in the spec") as info:
        generate(spec, duration_s=10, group_mix={"Claude": 1})
    assert info.value.param == "group_mix"


def test_windowed_model_is_a_point_process_per_window():
    from burstlab.spec import WindowFit

    spec = make_spec("renewal", regime=False)
    spec.arrivals.model = "windowed"
    spec.arrivals.windows = [WindowFit(0, 100, 2.0, 1.0), WindowFit(100, 100, 8.0, 1.0)]
    t = generate(spec, duration_s=4000, seed=2).frame["arrival_s"].to_numpy()
    counts = window_counts(t, 100.0, 0.0, 4000.0)
    assert counts[0::2].mean() == pytest.approx(200, rel=0.05)
    assert counts[1::2].mean() == pytest.approx(800, rel=0.05)
    # a point process, not a fixed count per window
    assert counts[1::2].std() > 10


def test_bad_knobs_raise():
    with pytest.raises(UsageError, match="duration") as info:
        generate(make_spec(), duration_s=0)
    assert info.value.param == "duration_s"
    with pytest.raises(UsageError, match="must be a finite number > 0, found -1") as info:
        generate(make_spec(), duration_s=10, rate_scale=-1)
    assert info.value.param == "rate_scale"


def test_fast_ppf_is_the_exact_inverse_cdf():
    """The grid-lookup inverse CDF synth draws lengths with gives exactly the tokens of the
    true inverse of the marginal's CDF, inf{x: F(x) > u} (found here by bisection), atoms
    included."""
    from burstlab.spec import EmpiricalDist, Marginal, PointMass

    dist = EmpiricalDist(
        [5.0, 50.0, 500.0, 1000.0],
        [0.3, 0.3, 0.2],
        [PointMass(1000.0, 0.1), PointMass(100.0, 0.05), PointMass(1.0, 0.05)],
    )
    m = Marginal(dist, 1, 1000, 200)
    u = np.concatenate(
        [np.random.default_rng(1).random(20_000), [0.0, 0.05, 0.35, 0.65, 0.999999]]
    )  # random, then knots and cell edges
    lo, hi = np.full(u.size, 0.5), np.full(u.size, 2000.0)
    for _ in range(80):  # the smallest x with cdf(x) > u, to ~1e-15 relative
        mid = np.sqrt(lo * hi)
        below = dist.cdf(mid) <= u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    assert np.array_equal(m.ppf(u), np.clip(np.rint(hi), 1, 1000))
    assert np.all(dist.ppf(u[u < 0.05]) == 1.0)  # an atom's own value, exactly
    assert np.all(dist.ppf(u[u >= 0.9]) == 1000.0)


def test_regime_path_matches_chain_autocovariance():
    """The simulated level sequence has the chain's theoretical autocovariance (fitting's
    `chain_autocov`): a sticky 3-state chain, lags 0, 1, 5, 20."""
    from burstlab.fitting.modulation import chain_autocov
    from burstlab.spec import BurstRegime
    from burstlab.synth.arrivals import regime_path

    trans = np.array([[0.9, 0.08, 0.02], [0.05, 0.9, 0.05], [0.02, 0.08, 0.9]])
    w, v = np.linalg.eig(trans.T)
    pi = np.real(v[:, np.argmin(abs(w - 1))])
    pi /= pi.sum()
    levels = np.array([0.2, 1.0, 3.0]) / (pi @ [0.2, 1.0, 3.0])
    regime = BurstRegime(10.0, list(levels), trans.tolist(), list(pi), gamma_unit(1.0))
    states = regime_path(np.random.default_rng(0), regime, 400_000)
    x = levels[states] - 1.0
    lags = (0, 1, 5, 20)
    theory = chain_autocov(levels, trans, pi, 21)[list(lags)]
    sim = [float(np.mean(x[: x.size - d] * x[d:])) for d in lags]
    assert sim == pytest.approx(theory, abs=0.01)  # sampling s.e. at lag 20 is ≈ 0.003
    assert np.bincount(states, minlength=3) / states.size == pytest.approx(pi, abs=0.01)


def _cadence_gaps(rng: np.random.Generator, n: int) -> np.ndarray:
    """A near-fixed-cadence client (fixture): 30 % pairs ~1 ms apart, 50 % gaps at 0.1 s
    ± 5 %, 20 % pauses (exponential, mean 0.75 s) — mean gap 0.2 s, so 5 requests/s."""
    kind = rng.choice(3, size=n, p=[0.3, 0.5, 0.2])
    return np.select(
        [kind == 0, kind == 1],
        [rng.uniform(0.0005, 0.0015, n), 0.1 * rng.lognormal(0.0, 0.05, n)],
        rng.exponential(0.75, n),
    )


def test_real_time_gap_shape_keeps_cadence_and_regime():
    """The regime orders the gaps, the gap law gives their values: the cadence survives
    (the time-warped operational shape smears it) and the 10-s dispersion stays the regime's."""
    from scipy import stats

    from burstlab.fitting.gaplaw import gap_law

    law = gap_law(_cadence_gaps(np.random.default_rng(0), 50_000))
    spec = make_spec(rates=[5.0])
    real_time = replace(spec, arrivals=replace(spec.arrivals, gap_shape="real-time", gap_law=law))
    t = generate(real_time, duration_s=4_000, seed=1).frame["arrival_s"].to_numpy()
    t_op = generate(spec, duration_s=4_000, seed=1).frame["arrival_s"].to_numpy()
    gaps, gaps_op = np.diff(t), np.diff(t_op)
    assert t.size / 4_000 == pytest.approx(5.0, rel=0.1)
    assert stats.kstest(gaps, law.cdf).statistic < 0.03
    band = ((gaps > 0.07) & (gaps < 0.13)).mean()
    assert band == pytest.approx(0.5, abs=0.03)
    assert ((gaps_op > 0.07) & (gaps_op < 0.13)).mean() < 0.25
    # regime 0.4 / 1.6 on 10-s windows: a renewal with the same gap law has IDC ≈ 1–2 there
    renewal = np.cumsum(law.ppf(np.random.default_rng(2).random(t.size)))
    # the order of the gaps carries the regime: far above a renewal with the same law, and
    # not below the time-warped shape (long pauses land in quiet windows and stretch them:
    # measured 39 vs 20 here, a known over-statement, docs/synth.md)
    idc = dispersion_index(t, 10.0, 0.0, 4_000)
    assert idc > 3 * dispersion_index(renewal, 10.0, 0.0, 4_000)
    assert idc > 0.8 * dispersion_index(t_op, 10.0, 0.0, 4_000)
