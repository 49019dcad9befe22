"""Token-length models: recovery of known families from integer data, point masses at 0 and
at a cap, the copula, and the Azure conversation trace's load coupling."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from burstlab.fitting.lengths import fit_length, fit_lengths, load_coupling, normal_scores
from burstlab.traces import sample_frame


def test_lognormal_recovered_from_integer_tokens():
    rng = np.random.default_rng(21)
    x = np.maximum(np.rint(rng.lognormal(np.log(200), 0.9, 30_000)), 1)
    fit = fit_length(x, "output_tokens")
    assert fit.best.family == "lognormal" or fit.best.family == "lognormal-mixture"
    ln = next(c for c in fit.selection.candidates if c.family == "lognormal")
    assert ln.params["s"] == pytest.approx(0.9, rel=0.02)
    assert ln.params["scale"] == pytest.approx(200, rel=0.03)
    assert fit.empirical.mean() == pytest.approx(x.mean(), rel=0.01)


def test_short_outputs_use_the_discrete_likelihood():
    """Outputs of 1-20 tokens: a gamma on integers is still recovered (a continuous fit on
    the rounded values would be biased by the rounding)."""
    rng = np.random.default_rng(22)
    x = np.rint(rng.gamma(2.0, 3.0, 40_000))  # token k ⇔ the latent length lies in [k−½, k+½)
    x = x[x >= 1]  # the model lives on k ≥ 1 (zeros are a point mass of their own)
    fit = fit_length(x)
    g = next(c for c in fit.selection.candidates if c.family == "gamma")
    assert g.params["a"] == pytest.approx(2.0, rel=0.08)


def test_point_masses_at_zero_and_cap():
    rng = np.random.default_rng(23)
    x = np.minimum(np.rint(rng.lognormal(5, 1, 10_000)), 1000)
    x[:300] = 0
    fit = fit_length(x)
    values = {m.value: m.prob for m in fit.point_masses}
    assert values[0.0] == pytest.approx(0.03)
    assert values[1000.0] == pytest.approx(np.mean(x == 1000))
    m = fit.to_marginal()
    draws = m.ppf(np.random.default_rng(1).random(100_000))
    assert np.mean(draws == 0) == pytest.approx(0.03, abs=0.003)
    assert np.mean(draws == 1000) == pytest.approx(np.mean(x == 1000), abs=0.004)
    assert draws.max() == 1000


def test_copula_rho_of_a_gaussian_copula():
    rng = np.random.default_rng(24)
    z = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], 20_000)
    inp = np.rint(np.exp(6 + z[:, 0])) + 1
    out = np.rint(np.exp(4 + 0.5 * z[:, 1])) + 1
    rho = np.corrcoef(normal_scores(inp), normal_scores(out))[0, 1]
    assert rho == pytest.approx(0.6, abs=0.02)
    frame = pl.DataFrame(
        {"arrival_s": np.arange(inp.size) * 0.1, "input_tokens": inp, "output_tokens": out}
    )
    fit = fit_lengths(frame)
    assert fit.copula_rho == pytest.approx(0.6, abs=0.02)
    assert fit.to_spec().dependence.copula.rho == pytest.approx(fit.copula_rho)


def test_azure_conversation_busy_minutes_have_shorter_outputs():
    fit = fit_lengths(sample_frame("azure-llm-2023-conv"))
    row = fit.load.filter(pl.col("window_s") == 60.0).row(0, named=True)
    assert row["n_windows"] == 59
    assert row["corr"] < -0.7  # docs/design.md §4: corr ≈ −0.8 at 60 s
    spec = fit.to_spec()
    assert spec.dependence.load_coupling.corr == pytest.approx(row["corr"])
    assert spec.dependence.load_coupling.elasticity < 0
    assert fit.failure_rate == 0.0
    assert fit.input.n == fit.output.n == 19_366


def test_load_coupling_is_zero_without_dependence():
    rng = np.random.default_rng(25)
    t = np.sort(rng.uniform(0, 6000, 30_000))
    table = load_coupling(t, rng.lognormal(5, 1, t.size), windows=(60.0,))
    assert abs(table["corr"][0]) < 0.3


def test_insignificant_load_coupling_is_not_put_in_the_spec():
    # Azure code: corr ≈ 0.03 over 46 minutes — noise, so no coupling for synth to imprint
    fit = fit_lengths(sample_frame("azure-llm-2023-code"))
    assert abs(fit.load.filter(pl.col("window_s") == 60.0)["corr"][0]) < 0.2
    assert fit.to_spec().dependence.load_coupling is None
