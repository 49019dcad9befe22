"""Burstiness analytics: a Poisson process has IDC ≈ 1 at every scale; a gamma renewal's
IDC tends to CV²; real traces are far burstier, and the numbers say so."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from burstlab.fitting.analytics import burstiness, hurst_aggvar, window_fits
from burstlab.stats import dispersion_curve, window_counts
from burstlab.traces import sample_frame


def test_window_counts_reconcile():
    t = np.array([0.0, 0.5, 1.0, 1.2, 2.9, 3.5])
    c = window_counts(t, 1.0)
    assert c.tolist() == [2, 2, 1]  # 3.5 lies in the partial 4th window, dropped
    assert c.sum() == np.sum(t < 3.0)


def test_poisson_dispersion_is_one_at_every_scale():
    rng = np.random.default_rng(7)
    t = np.cumsum(rng.exponential(0.05, 400_000))  # 20 req/s for ~20,000 s
    curve = dispersion_curve(t)
    assert curve["window_s"].min() == pytest.approx(0.1)
    assert curve["window_s"].max() == pytest.approx(1800.0)
    for row in curve.iter_rows(named=True):
        # sampling s.d. of a variance/mean ratio from k windows is ≈ sqrt(2/(k-1))
        tol = 4 * math.sqrt(2 / (row["windows"] - 1))
        assert abs(row["idc"] - 1) < tol, row
    assert hurst_aggvar(t) == pytest.approx(0.5, abs=0.08)


def test_gamma_renewal_dispersion_tends_to_cv_squared():
    rng = np.random.default_rng(8)
    t = np.cumsum(rng.gamma(0.25, 4.0, 400_000))  # CV² = 4
    curve = dispersion_curve(t, [1.0, 1000.0])
    assert curve["idc"][1] == pytest.approx(4.0, rel=0.25)
    assert curve["idc"][0] < curve["idc"][1]


def test_real_azure_traces_are_bursty():
    conv = burstiness(sample_frame("azure-llm-2023-conv")).groups[0]
    assert conv.n == 19_366
    assert conv.cv == pytest.approx(1.09, abs=0.01)  # PROVENANCE.md: IAT CV ≈ 1.09
    idc = conv.dispersion["idc"].to_numpy()
    assert np.all(np.diff(idc) > 0)  # rising with the scale: not a renewal process
    assert conv.idc_at(60.0) > 10
    assert conv.idc_at(300.0) > 40
    assert conv.hurst > 0.7
    code = burstiness(sample_frame("azure-llm-2023-code")).groups[0]
    assert code.cv == pytest.approx(13.15, abs=0.1)  # PROVENANCE.md: IAT CV ≈ 13
    assert code.idc_at(60.0) > conv.idc_at(60.0)


def test_windows_cover_every_request():
    t = sample_frame("azure-llm-2023-conv")["arrival_s"].to_numpy()
    wins = window_fits(t, 600.0)
    assert len(wins) == 6
    assert sum(w.count for w in wins) == t.size
    assert all(w.fit is not None and w.fit.family == "gamma" for w in wins)


def test_by_group_and_missing_column():
    rng = np.random.default_rng(9)
    n = 4000
    frame = pl.DataFrame(
        {
            "arrival_s": np.sort(rng.uniform(0, 2000, n)),
            "model": rng.choice(["a", "b"], n, p=[0.75, 0.25]),
        }
    )
    report = burstiness(frame, by="model", fit_windows=False)
    table = report.table()
    assert table["group"].to_list() == ["all", "a", "b"]
    assert table["requests"][1] + table["requests"][2] == n
    from burstlab.errors import SchemaError

    with pytest.raises(SchemaError, match="cannot group by 'client'"):
        burstiness(frame, by="client")


def test_grid_scales_are_not_measured_below_the_grid():
    moon = burstiness(sample_frame("mooncake-conversation")).groups[0]
    assert moon.resolution_s == pytest.approx(3.0, abs=2e-3)
    assert moon.dispersion["window_s"].min() >= 9.0
    assert moon.idc_at(1.0) is None and moon.idc_at(10.0) is not None


def test_daily_cycle_is_found_by_stl():
    """Three days of a Poisson process whose rate follows a daily sine (fixture from a known
    model): STL finds a strong daily season; two hours of it are too short to try."""
    from burstlab.fitting.analytics import decompose_rate

    rng = np.random.default_rng(10)
    days = 3
    t = np.cumsum(rng.exponential(1 / 0.4, int(0.4 * 86400 * days * 1.1)))
    t = t[t < 86400 * days]
    keep = rng.random(t.size) < 0.5 * (1 + 0.9 * np.sin(2 * np.pi * t / 86400))
    t = t[keep]
    dec = decompose_rate(t)
    assert dec is not None and dec.periods == [24]
    assert dec.seasonal_strength > 0.8
    assert decompose_rate(t[t < 7200]) is None
