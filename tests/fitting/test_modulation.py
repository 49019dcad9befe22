"""The non-stationary arrival model: HMM recovery on a known MMPP, and on real data a
dispersion curve that a single renewal process cannot reach."""

from __future__ import annotations

import numpy as np
import pytest

from burstlab.fitting.arrivals import fit_arrivals
from burstlab.fitting.dispersion import chain_autocov, implied_idc, rouwenhorst
from burstlab.fitting.hmm import fit_poisson_hmm
from burstlab.fitting.modulation import fit_modulation
from burstlab.traces import sample_frame


def _mmpp(seed: int, n_windows: int = 2000, window_s: float = 5.0, base: float = 4.0):
    """Counts of a 2-state Markov-modulated Poisson process on fixed windows (a fixture
    drawn from a known model, not real data)."""
    rng = np.random.default_rng(seed)
    levels = np.array([0.5, 2.0])
    trans = np.array([[0.95, 0.05], [0.10, 0.90]])
    s = 0
    states = np.empty(n_windows, dtype=int)
    for i in range(n_windows):
        states[i] = s
        s = 1 - s if rng.random() < trans[s, 1 - s] else s
    counts = rng.poisson(base * window_s * levels[states])
    return counts, np.full(n_windows, base * window_s), levels, trans


def test_poisson_hmm_recovers_a_known_mmpp():
    counts, expected, levels, trans = _mmpp(seed=3)
    fits = [fit_poisson_hmm(counts, expected, k) for k in (1, 2, 3)]
    best = min(fits, key=lambda h: h.bic)
    assert best.k == 2
    np.testing.assert_allclose(best.levels, levels, rtol=0.05)
    np.testing.assert_allclose(best.transition, trans, atol=0.03)
    assert best.converged


def test_poisson_process_needs_no_regime():
    rng = np.random.default_rng(4)
    t = np.cumsum(rng.exponential(0.2, 15_000))
    fit = fit_modulation(t)
    assert min(fit.hmms, key=lambda h: h.bic).k == 1
    # whatever regime is chosen, it implies almost no extra dispersion
    assert np.all(np.abs(fit.chosen.implied_idc - 1) < 0.3)
    assert fit.within.best.params.get("a", 1.0) == pytest.approx(1.0, abs=0.05)


def test_rouwenhorst_matches_ar1_moments():
    x, p = rouwenhorst(7, 0.9, 0.5)
    vals, vecs = np.linalg.eig(p.T)
    pi = np.abs(np.real(vecs[:, np.argmin(np.abs(vals - 1))]))
    pi /= pi.sum()
    var = float(pi @ x**2)
    lag1 = float(pi * x @ p @ x) / var
    assert var == pytest.approx(0.25, rel=1e-9)
    assert lag1 == pytest.approx(0.9, rel=1e-9)


def test_implied_idc_of_two_level_chain_matches_simulation():
    levels = np.array([0.5, 1.5])
    trans = np.array([[0.9, 0.1], [0.1, 0.9]])
    pi = np.array([0.5, 0.5])
    acv = chain_autocov(levels, trans, pi, 50)
    pred = implied_idc(acv, rate_per_s=10.0, window_s=1.0, scales=np.array([1.0, 10.0, 40.0]))
    rng = np.random.default_rng(5)
    s, states = 0, []
    for _ in range(200_000):
        states.append(s)
        s = s if rng.random() < 0.9 else 1 - s
    counts = rng.poisson(10.0 * levels[np.array(states)])
    for m, p in zip((1, 10, 40), pred, strict=True):
        c = counts[: counts.size // m * m].reshape(-1, m).sum(1)
        assert c.var() / c.mean() == pytest.approx(p, rel=0.08)


def test_azure_conversation_dispersion_is_reproduced():
    t = sample_frame("azure-llm-2023-conv")["arrival_s"].to_numpy()
    fit = fit_modulation(t)
    renewal = fit_arrivals(t).best
    cv2 = (renewal.frozen().std() / renewal.mean()) ** 2
    emp = dict(zip(fit.scales, fit.empirical_idc, strict=True))
    assert emp[60.0] > 8 * cv2  # a renewal process cannot reach this
    implied = dict(zip(fit.scales, fit.chosen.implied_idc, strict=True))
    for scale in (10.0, 60.0, 300.0):
        assert implied[scale] == pytest.approx(emp[scale], rel=0.25)
    assert fit.chosen.idc_rms_log_error < 0.15
    arrivals = fit.apply(fit_arrivals(t).to_spec())
    assert arrivals.model == "modulated"
    regime = arrivals.burst_regime
    assert float(np.dot(regime.stationary, regime.levels)) == pytest.approx(1.0)
    assert regime.within.mean() == pytest.approx(1.0)
    assert regime.window_s == 5.0


def test_expected_sample_idc_matches_short_simulated_traces():
    """A trace of 40 windows measures variance around its own mean; the span-corrected
    formula predicts the average of what such short traces show, the plain one does not."""
    levels = np.array([0.5, 1.5])
    trans = np.array([[0.98, 0.02], [0.02, 0.98]])  # slow: mean dwell 50 windows
    pi = np.array([0.5, 0.5])
    acv = chain_autocov(levels, trans, pi, 400)
    scales = np.array([5.0])
    plain = implied_idc(acv, 10.0, 1.0, scales)[0]
    sample = implied_idc(acv, 10.0, 1.0, scales, span_s=200.0)[0]
    rng = np.random.default_rng(6)
    seen = []
    for _ in range(400):
        s = int(rng.random() < 0.5)
        states = np.empty(200, dtype=int)
        for i in range(200):
            states[i] = s
            s = 1 - s if rng.random() < 0.02 else s
        c = rng.poisson(10.0 * levels[states]).reshape(40, 5).sum(1)
        seen.append(c.var(ddof=1) / c.mean())
    assert np.mean(seen) == pytest.approx(sample, rel=0.08)
    assert np.mean(seen) < 0.9 * plain  # the plain formula over-states it by ~20 %
