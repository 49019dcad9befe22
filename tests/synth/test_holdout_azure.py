"""The headline experiment (docs/design.md §4) on the real Azure 2023 samples: fit on the first
part, generate, judge against the held-out later part beside the peers' baselines — on two
splits, five seeds each. The assertions are what genuinely holds (docs/synth.md has the
numbers: the code trace needs the real-time gap shape to pass inter-arrival KS)."""

from __future__ import annotations

import pytest

from burstlab import fitting
from burstlab.synth import suite as F
from burstlab.synth.holdout import validate
from burstlab.traces import sample_frame

ARRIVAL_SHAPE = ("dispersion_10s", "dispersion_60s", "dispersion_300s", "acf_rmse")
SPLITS = ((2300.0, None), (1800.0, 150.0))  # (train seconds, envelope step); 1,200 s held out


def _run(trace: str, train_s: float, step_s: float | None):
    frame = sample_frame(f"azure-llm-2023-{trace}")
    return validate(
        frame,
        lambda train: fitting.fit(train).spec,
        train_s=train_s,
        heldout_s=1200.0,
        step_s=step_s,
    )


@pytest.mark.slow
@pytest.mark.parametrize(("train_s", "step_s"), SPLITS)
def test_conv_inside_envelope_and_beats_renewal_baselines(train_s, step_s):
    h = _run("conv", train_s, step_s)
    shares = h.verdicts()
    # inside the real envelope (25 % slack) for most seeds on EVERY metric
    assert min(shares.values()) >= 0.6, shares
    for baseline in ("poisson", "gamma"):
        wins = h.beats("burstlab", baseline)
        # the non-stationary arrival model and the load coupling are what the peers lack
        assert all(wins[m] for m in (*ARRIVAL_SHAPE, "load_corr_diff")), (baseline, wins)
    # the BurstGPT demo's Gamma(0.25) gaps have IDC ≈ 4 at every scale, which can happen to
    # match at 10 s; everywhere else (and on lengths) burstlab is closer
    wins = h.beats("burstlab", "burstgpt_demo")
    assert all(wins[m] for m in F.METRICS if m not in ("dispersion_10s", "spearman_diff")), wins
    # Poisson / Gamma renewal fall outside on the 60 s dispersion in every seed
    assert h.verdicts("poisson")["dispersion_60s"] == 0.0
    assert h.verdicts("gamma")["dispersion_60s"] == 0.0
    # the BurstGPT demo's Zipf lengths are far off; burstlab's lengths are inside
    assert h.verdicts("burstgpt_demo")["w1_log_input"] == 0.0
    assert shares["w1_log_input"] == shares["w1_log_output"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize(("train_s", "step_s"), SPLITS)
def test_code_inside_envelope_with_real_time_gaps(train_s, step_s):
    h = _run("code", train_s, step_s)
    # chosen on the training rows: the near-fixed cadence needs the real-time gap shape
    assert h.spec.arrivals.model == "modulated"
    assert h.spec.arrivals.gap_shape == "real-time"
    shares = h.verdicts()
    # every metric, the inter-arrival KS included, is inside for most seeds
    assert min(shares.values()) >= 0.6, shares
    for baseline in ("poisson", "gamma", "burstgpt_demo"):
        wins = h.beats("burstlab", baseline)
        assert all(wins[m] for m in ("iat_ks", "dispersion_1s", "dispersion_10s", "acf_rmse")), wins
