"""The fidelity suite: exact values on constructed frames, and known shifts → known distances."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from burstlab.stats import dispersion_index, window_counts
from burstlab.synth import suite as F
from burstlab.synth.table import requests_table


def _poisson_frame(seed: int, rate: float, duration: float, out_scale: float = 1.0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1 / rate, int(rate * duration * 1.2)))
    t = t[t < duration]
    inp = rng.lognormal(8, 0.8, t.size).astype(int) + 1
    out = (rng.lognormal(8, 0.7, t.size) * out_scale).astype(int) + 1
    return requests_table("test", t, inp, out)


def test_identical_frames_are_perfect():
    real = _poisson_frame(1, 5.0, 1200)
    cmp = F.compare(real, real, span_s=1200)
    for metric, kind in F.METRICS.items():
        expected = 1.0 if kind == "ratio" else 0.0
        assert cmp.values[metric] == pytest.approx(expected, abs=1e-12), metric


def test_duplicated_rows_double_dispersion_and_keep_the_rest():
    """Every request sent twice: counts double, so variance/mean doubles exactly at every
    width; ACF, length distributions, Spearman and load correlation are unchanged; half of
    the gaps become 0, so the KS distance on gaps is ≈ 0.5."""
    real = _poisson_frame(2, 5.0, 1200)
    doubled = pl.concat([real, real]).sort("arrival_s")
    v = F.compare(real, doubled, span_s=1200).values
    for w in F.DISPERSION_WINDOWS_S:
        assert v[f"dispersion_{w:g}s"] == pytest.approx(2.0, rel=1e-9)
    for m in ("acf_rmse", "w1_log_input", "w1_log_output", "spearman_diff", "load_corr_diff"):
        assert v[m] == pytest.approx(0.0, abs=1e-9), m
    assert v["iat_ks"] == pytest.approx(0.5, abs=0.01)


def test_known_shifts_give_known_distances():
    """Poisson rate 1 vs 2: KS between Exp(1) and Exp(2) is max|e^-x − e^-2x| = 1/4.
    Outputs scaled by e^0.5 (≈ 3,000 tokens, so log1p ≈ log): W1 on log1p(output) ≈ 0.5."""
    a = _poisson_frame(3, 1.0, 40_000)
    b = _poisson_frame(4, 2.0, 40_000, out_scale=math.exp(0.5))
    v = F.compare(a, b, span_s=40_000).values
    assert v["iat_ks"] == pytest.approx(0.25, abs=0.015)
    assert v["w1_log_output"] == pytest.approx(0.5, abs=0.02)
    assert v["w1_log_input"] < 0.02
    for w in (0.1, 1.0, 10.0):
        assert v[f"dispersion_{w:g}s"] == pytest.approx(1.0, abs=0.15)


def test_load_length_corr_exact():
    """Minute k has k+1 requests whose outputs are all 1000 − 10(k+1): corr = −1 exactly."""
    t, out = [], []
    for k in range(10):
        c = k + 1
        t += list(60 * k + np.linspace(1, 50, c))
        out += [1000 - 10 * c] * c
    frame = requests_table("test", np.array(t), np.full(len(t), 100), np.array(out))
    assert F.load_length_corr(frame, 600) == pytest.approx(-1.0)


def test_dispersion_counts_whole_bins_including_empty_ones():
    t = np.array([0.5, 0.6, 2.5])  # bins of 1 s over 4 s: counts 2, 0, 1, 0
    counts = window_counts(t, 1.0, 0.0, 4.0)
    assert counts.tolist() == [2, 0, 1, 0]
    assert dispersion_index(t, 1.0, 0.0, 4.0) == pytest.approx(np.var([2, 0, 1, 0], ddof=1) / 0.75)


def test_resolution_floors_timestamps_before_gaps():
    """Whole-second timestamps: at resolution 1 s, a continuous-time copy is no longer 'wrong'."""
    real = _poisson_frame(5, 3.0, 2000)
    coarse = real.with_columns(pl.col("arrival_s").floor())
    raw = F.compare(coarse, real, span_s=2000).values["iat_ks"]
    snapped = F.compare(coarse, real, span_s=2000, resolution_s=1.0).values
    assert raw > 0.3
    assert snapped["iat_ks"] == pytest.approx(0.0, abs=1e-12)
    # every arrival metric sees the grid: the bucketed counts are identical after snapping
    raw_disp = F.compare(coarse, real, span_s=2000).values["dispersion_0.1s"]
    assert raw_disp < 0.5  # continuous times spread what the grid piles into one instant
    assert snapped["dispersion_0.1s"] == pytest.approx(1.0, abs=1e-12)


def test_envelope_windows_bounds_and_verdicts():
    full = _poisson_frame(6, 4.0, 3600)
    train, heldout = F.split_holdout(full, 2400, 1200)
    assert heldout["arrival_s"].min() >= 0 and heldout["arrival_s"].max() < 1200
    assert train.height + heldout.height == full.height
    env = F.envelope(train, heldout, 1200, train_span_s=2400)
    assert env.starts_s == (0.0, 300.0, 600.0, 900.0, 1200.0)
    assert env.windows.height == 5 * len(F.METRICS)
    lo, hi = env.bounds("dispersion_60s")
    m = max(abs(math.log(env.low["dispersion_60s"])), abs(math.log(env.high["dispersion_60s"])))
    assert hi == pytest.approx(math.exp(m) * 1.25)
    assert lo == pytest.approx(1 / hi)
    assert env.bounds("iat_ks") == (0.0, pytest.approx(env.high["iat_ks"] * 1.25))

    same_process = F.window(full, 1200, 2400)  # one of the envelope's own windows
    doubled = pl.concat([heldout, heldout]).sort("arrival_s")
    res = F.fidelity(
        heldout,
        {"real": same_process, "doubled": doubled},
        train=train,
        window_s=1200,
        train_span_s=2400,
    )
    assert res.within_all("real")
    assert not res.within_all("doubled")
    wins = res.wins("real", "doubled")
    assert wins["dispersion_1s"] and wins["iat_ks"]
    assert res.verdicts.height == 2 * len(F.METRICS)
    assert F.summary_lines(res)[0].startswith("metric")


def test_envelope_rejects_short_training():
    full = _poisson_frame(7, 4.0, 1000)
    with pytest.raises(F.SchemaError, match="shorter than the held-out"):
        F.envelope(full, full, 1200)
