"""The real-time gap law (fitting/gaplaw.py) and the training-only arrival-model choice
(fitting/choice.py), on processes drawn here from known laws (fixtures, not real rows)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from burstlab import fitting
from burstlab.distributions import sorted_draws
from burstlab.errors import SpecError
from burstlab.fitting.gaplaw import cross_ks, gap_law
from burstlab.spec import WorkloadSpec


def test_gap_law_reconciles_mass_and_follows_the_data():
    rng = np.random.default_rng(0)
    gaps = np.concatenate(
        [np.zeros(2_000), rng.lognormal(-2.3, 0.05, 6_000), rng.exponential(1, 2_000)]
    )
    law = gap_law(gaps)
    assert law is not None
    assert sum(law.probs) + sum(m.prob for m in law.point_masses) == pytest.approx(1.0)
    assert law.point_masses[0].value == 0.0 and law.point_masses[0].prob == pytest.approx(0.2)
    # the cadence at 0.1 s: the law's mass in ±15 % equals the sample's, to a bin's width
    band = law.cdf(np.array([0.115]))[0] - law.cdf(np.array([0.085]))[0]
    assert band == pytest.approx(((gaps > 0.085) & (gaps < 0.115)).mean(), abs=0.01)
    draws = law.ppf(rng.random(50_000))
    assert (draws == 0).mean() == pytest.approx(0.2, abs=0.01)
    assert np.mean(draws) == pytest.approx(gaps.mean(), rel=0.05)
    assert gap_law(gaps[:100]) is None  # too few to be a law
    # the inverse CDF: exactly 0.0 below the tie mass, the CDF's inverse above it; sorted
    # draws need no sort
    u = rng.random(10_000)
    zero = law.point_masses[0].prob
    x = law.ppf(u)
    assert np.all(x[u < zero] == 0.0) and np.all(x[u >= zero] > 0)
    np.testing.assert_allclose(law.cdf(x[u > zero]), u[u > zero], rtol=0, atol=1e-12)
    ordered = sorted_draws(law, 20_000, rng)
    assert np.all(np.diff(ordered) >= 0)
    assert (ordered == 0).mean() == pytest.approx(0.2, abs=0.01)
    assert np.median(ordered) == pytest.approx(np.median(gaps), rel=0.02)


def test_cross_ks_is_out_of_sample():
    rng = np.random.default_rng(1)
    same = np.cumsum(rng.exponential(1.0, 20_000))
    assert cross_ks(same) < 0.03  # a stationary renewal: halves agree up to sampling noise
    drift = np.cumsum(np.concatenate([rng.exponential(1.0, 10_000), rng.exponential(2.0, 10_000)]))
    # exponential(1) vs exponential(2): sup |e^-x − e^-x/2| = 0.25 at x = 2 ln 2
    assert cross_ks(drift) == pytest.approx(0.25, abs=0.03)


def _on_off_cadence(rng: np.random.Generator, span_s: float) -> np.ndarray:
    """A near-fixed-cadence client switched on and off (fixture): ON spells (mean 20 s) send
    every 0.1 s ± 5 %, a third of them as pairs under 2 ms apart; OFF spells last 20 s on average."""
    t, out = 0.0, []
    while t < span_s:
        end = t + rng.exponential(20.0)
        while t < end:
            out.append(t)
            t += 0.1 * rng.lognormal(0.0, 0.05) if rng.random() > 0.33 else rng.uniform(0, 0.002)
        t += rng.exponential(20.0)
    return np.array(out)


def test_choice_picks_real_time_gaps_for_a_cadence_client():
    t = _on_off_cadence(np.random.default_rng(2), 3_000.0)
    fit = fitting.fit(pl.DataFrame({"arrival_s": t}), source="fixture")
    table = fit.choice.candidates
    chosen = table.filter(pl.col("chosen"))
    assert chosen["model"].item() == "modulated" and chosen["gap_shape"].item() == "real-time"
    ks = dict(zip(table["gap_shape"], table["gap_ks"], strict=True))
    assert ks["real-time"] < 0.05 < ks["operational"]  # the warp smears the cadence
    assert fit.spec.arrivals.gap_shape == "real-time" and fit.spec.arrivals.gap_law is not None
    assert any("arrival model 'modulated' (real-time gaps)" in n for n in fit.spec.notes)
    # additive spec fields: they round-trip, and a real-time shape without a law is refused
    back = WorkloadSpec.from_json(fit.spec.to_json())
    assert back.arrivals.gap_law == fit.spec.arrivals.gap_law
    back.arrivals.gap_law = None
    with pytest.raises(SpecError, match=r"gap_shape.*'real-time' needs gap_law"):
        back.validate()
