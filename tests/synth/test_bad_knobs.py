"""Knobs and specs at their limits: every one is a one-line UsageError/SpecError or a valid
workload, never another exception, a hang, or an allocation beyond memory. Each test
reproduces a defect the synth and spec fuzz suites found (tests/fuzz/test_synth_fuzz.py,
tests/fuzz/test_spec_fuzz.py)."""

from __future__ import annotations

import importlib
import math
import time

import numpy as np
import pytest
from synth_specs import grouped_spec, make_spec, session_spec

from burstlab.errors import SpecError, UsageError
from burstlab.spec import FamilyFit, LoadCoupling, WindowFit
from burstlab.synth.arrivals import MAX_REQUESTS, regime_path
from burstlab.synth.generate import generate
from burstlab.synth.sessions import new_tokens_from_input


@pytest.mark.parametrize(
    ("knobs", "param", "needle"),
    [
        ({"speedup": math.inf}, "speedup", "finite number > 0, found inf"),  # was OverflowError
        ({"speedup": math.nan}, "speedup", "found nan"),
        ({"rate_scale": math.nan}, "rate_scale", "found nan"),  # was accepted
        ({"rate_scale": math.inf}, "rate_scale", "found inf"),
        ({"duration_s": -math.inf}, "duration_s", "found -inf"),
        ({"duration_s": "60"}, "duration_s", "expected a number, found '60'"),  # TypeError
        ({"seed": -1}, "seed", "must be ≥ 0, found -1"),  # numpy's ValueError
        ({"seed": 1.5}, "seed", "expected an integer ≥ 0, found 1.5"),
        ({"duration_s": 1e300, "speedup": 1e300}, "duration_s", "is not a finite time"),
        ({"duration_s": 1e6, "rate_scale": 1e9}, "duration_s", "the knobs ask for about"),
    ],
)
def test_bad_knobs_are_usage_errors(knobs, param, needle):
    args = {"duration_s": 10.0, **knobs}
    with pytest.raises(UsageError, match=None) as info:
        generate(make_spec(), **args)
    assert info.value.param == param
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("mix", "needle"),
    [
        ({"ChatGPT": 0, "GPT-4": 0}, "no group has a weight > 0"),  # was a numpy ValueError
        ({"ChatGPT": -1, "GPT-4": 1}, "the weight of 'ChatGPT' must be a finite number ≥ 0"),
        ({"ChatGPT": math.nan}, "found nan"),
        ({"GPT-4": math.inf}, "found inf"),
        ({"Claude": 1}, "not in the spec"),
    ],
)
def test_bad_group_mixes_are_usage_errors(mix, needle):
    with pytest.raises(UsageError) as info:
        generate(grouped_spec(), duration_s=10, group_mix=mix)
    assert info.value.param == "group_mix" and needle in str(info.value)


def test_a_group_mix_for_a_spec_without_groups_is_refused_not_ignored():
    with pytest.raises(UsageError, match="the spec has no groups to mix"):
        generate(make_spec(), duration_s=10, group_mix={"a": 1})
    with pytest.raises(UsageError, match="session workloads do not use groups"):
        generate(grouped_spec(), duration_s=10, group_mix={"GPT-4": 1}, sessions=True)
    assert generate(make_spec(), duration_s=10, group_mix={}).frame.height > 0  # empty: no-op


def test_a_tiny_duration_at_a_huge_rate_draws_only_its_duration(monkeypatch):
    """duration 1e-6 s at rate_scale 1e6: the modulated model drew arrivals for its whole
    first grid step (10 s × ~5e6 req/s = 5e7 draws; killed for memory at rate_scale 1e9); now
    the operational horizon Λ is cut at the duration."""
    import burstlab.synth.arrivals as arrivals

    horizons = []
    real = arrivals.unit_renewal
    monkeypatch.setattr(
        arrivals, "unit_renewal", lambda rng, g, h: horizons.append(h) or real(rng, g, h)
    )
    w = generate(make_spec(), duration_s=1e-6, rate_scale=1e6, seed=1)
    assert w.frame.height < 100
    # Λ(1e-6 s) at 1e6 × (2 … 8 req/s × regime level 0.4 or 1.6): a few requests, not 5e7
    assert horizons and max(horizons) < 50


def test_more_requests_than_one_call_generates_is_refused_before_drawing():
    start = time.perf_counter()
    with pytest.raises(UsageError, match=f"more than the {MAX_REQUESTS:,}"):
        generate(make_spec("renewal", regime=False), duration_s=1e6, rate_scale=1e6)
    assert time.perf_counter() - start < 2


def test_an_intensity_grid_beyond_the_limit_is_refused():
    """1e6 s × speedup 1e3 of a 10-s burst regime: 1e8 windows of Markov chain (memory and
    minutes); a UsageError now names the count."""
    with pytest.raises(UsageError, match=r"take 1e\+08 windows of the spec's 10 s") as info:
        generate(make_spec(), duration_s=1e6, speedup=1e3, rate_scale=1e-9)
    assert info.value.param == "duration_s"


def test_tiny_windows_of_the_windowed_model_are_refused_not_looped():
    spec = make_spec("renewal", regime=False)
    spec.arrivals.model = "windowed"
    spec.arrivals.windows = [WindowFit(0, 1e-12, 2.0, 1.0)]
    with pytest.raises(UsageError, match="visit 1e\\+13 of the spec's windows"):
        generate(spec, duration_s=10)


def test_a_gap_law_too_heavy_to_reach_its_mean_is_a_spec_error():
    """A lognormal with σ = 12 has a finite mean (e^72 × scale) that samples never approach:
    the unit renewal looped, appending draws until memory ran out."""
    spec = make_spec("renewal", regime=False)
    spec.arrivals.renewal = FamilyFit("lognormal", {"s": 12.0, "scale": 1e-30}, "given")
    start = time.perf_counter()
    with pytest.raises(SpecError, match="too heavy-tailed to generate"):
        generate(spec, duration_s=10, rate_scale=100 * spec.arrivals.renewal.mean())  # 100/s
    assert time.perf_counter() - start < 30


def test_a_huge_load_elasticity_keeps_tokens_valid():
    """elasticity 1e300: k**e overflowed to inf, the factors became NaN and the output
    tokens INT32_MIN."""
    for e in (1e300, -1e300):
        spec = make_spec(elasticity=-1.0)
        spec.lengths.dependence.load_coupling = LoadCoupling(60.0, -0.8, e, 40)
        f = generate(spec, duration_s=600, seed=2).frame
        assert f["output_tokens"].min() >= 5 and f["output_tokens"].max() <= 2000


def test_a_session_window_without_a_session_start_is_empty():
    """0.015 s of a session workload started no conversation: an IndexError escaped."""
    w = generate(session_spec(), duration_s=0.015, seed=4, sessions=True)
    assert w.frame.height == 0 and w.frame["session_id"].dtype.is_(w.frame.schema["session_id"])


def test_sessions_of_a_spec_whose_inputs_are_all_zero():
    """The new-token workaround divided by the input mean (0): NaN token counts."""
    spec = session_spec()
    spec.lengths.input.mean = spec.lengths.output.mean = 0.0  # 0 / 0
    m = new_tokens_from_input(spec.lengths, np.array([1.0, 2.0, 3.0]))
    assert all(math.isfinite(e) for e in m.empirical.edges)
    f = generate(spec, duration_s=200, seed=1, sessions=True).frame
    assert f["input_tokens"].min() >= 0


def test_times_rounding_onto_the_end_of_the_window_are_cut(monkeypatch):
    """t ÷ speedup can round up onto duration_s (an arrival just below the horizon
    0.3 × 0.37 s, divided by 0.37, is 0.3 exactly); arrivals lie in [0, duration_s)."""
    gen = importlib.import_module("burstlab.synth.generate")  # the module, not the function

    last = np.nextafter(0.3 * 0.37, 0.0)
    assert last / 0.37 == 0.3
    monkeypatch.setattr(gen, "arrival_times", lambda *a: np.array([0.01, last]))
    f = generate(make_spec(), duration_s=0.3, speedup=0.37).frame
    assert f["arrival_s"].to_list() == [0.01 / 0.37]


def test_regime_path_is_the_markov_chain():
    """The bisect walk gives the same states as the per-step NumPy search it replaced."""
    spec = make_spec()
    regime = spec.arrivals.burst_regime
    rng = np.random.default_rng(7)
    states = regime_path(np.random.default_rng(7), regime, 5000)
    u = rng.random(5000)
    cum = np.cumsum(regime.transition, axis=1)
    expect = [int(np.searchsorted(np.cumsum(regime.initial), u[0], side="right"))]
    for x in u[1:]:
        expect.append(int(np.searchsorted(cum[expect[-1]], x, side="right")))
    assert states.tolist() == expect
    assert regime_path(np.random.default_rng(7), regime, 0).size == 0


def test_fidelity_of_an_empty_window_is_nan_not_a_scipy_error():
    """An empty candidate or held-out frame: scipy's wasserstein_distance raised ValueError
    ("Distribution can't be empty"); the length metrics are NaN (not within) instead."""
    from burstlab.synth import fidelity

    full = generate(make_spec(), duration_s=60, seed=1).frame
    empty = full.head(0)
    result = fidelity(full, {"empty": empty})
    values = dict(result.table().select("metric", "value").iter_rows())
    assert math.isnan(values["w1_log_input"]) and math.isnan(values["iat_ks"])
    assert fidelity(empty, {"full": full}).table().height > 0


def test_baselines_refuse_what_they_cannot_generate():
    from burstlab.errors import FitError
    from burstlab.synth import all_baselines

    train = generate(make_spec(), duration_s=60, seed=1).frame
    with pytest.raises(UsageError, match="found nan") as info:
        all_baselines(train, math.nan)  # reached the request-count check as "about nan"
    assert info.value.param == "duration_s"
    with pytest.raises(FitError, match="at least 2 training requests, found 1"):
        all_baselines(train.head(1), 60)
    with pytest.raises(FitError, match="every training request failed"):
        all_baselines(train.with_columns(failed=True), 60)  # numpy: integers(0, 0)
    regular = train.with_columns(arrival_s=np.arange(train.height) * 0.1)
    gamma = all_baselines(regular, 60, seed=1)["gamma"]  # CV 0: a 1/0 shape before
    gaps = np.diff(gamma["arrival_s"].to_numpy())
    assert gaps.std() / gaps.mean() < 0.01


def test_validate_names_a_fit_that_is_not_a_function():
    from burstlab import fitting
    from burstlab.synth import validate

    frame = generate(make_spec(), duration_s=300, seed=1).frame
    with pytest.raises(UsageError, match="expected a function of the training rows") as info:
        validate(frame, fitting.fit(frame), train_s=200, heldout_s=100)  # a TypeError before
    assert info.value.param == "fit"


def test_running_out_of_memory_is_a_usage_error(monkeypatch):
    """Within the request limit a machine may still run out: numpy's MemoryError becomes a
    UsageError that says how many requests were asked for and what to lower."""
    gen = importlib.import_module("burstlab.synth.generate")

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 80.0 GiB")

    monkeypatch.setattr(gen, "_request_frame", no_memory)
    with pytest.raises(UsageError, match=r"not enough memory for about 6 requests") as info:
        generate(make_spec("renewal", regime=False), duration_s=1.2)
    assert info.value.param == "duration_s"
