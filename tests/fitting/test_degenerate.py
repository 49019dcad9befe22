"""Degenerate traces: data that says little must fit to a model that says exactly that (point
masses, no dependence) and synthesize back exactly — or fail with a one-line FitError, never
another exception. Each test reproduces a reported defect or one the fuzz suite found
(tests/fuzz/test_fit_fuzz.py)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from burstlab import fitting, synth
from burstlab.errors import FitError, InputError, UsageError
from burstlab.fitting.modulation import default_burst_window
from burstlab.spec import WorkloadSpec

INT32_MAX = 2**31 - 1


def frame(t, inp, out, failed=None) -> pl.DataFrame:
    t = np.asarray(t, dtype=np.float64)
    n = t.size
    col = lambda x: np.full(n, x, np.int32) if np.isscalar(x) else np.asarray(x, np.int32)  # noqa: E731
    return pl.DataFrame(
        {
            "source": ["test"] * n,
            "arrival_s": t,
            "input_tokens": col(inp),
            "output_tokens": col(out),
            "failed": np.zeros(n, bool) if failed is None else np.asarray(failed, bool),
        }
    )


def poisson_times(n: int, seed: int = 0, rate: float = 1.0) -> np.ndarray:
    t = np.cumsum(np.random.default_rng(seed).exponential(1 / rate, n))
    return t - t[0]


def round_trip(spec: WorkloadSpec, tmp_path) -> WorkloadSpec:
    back = WorkloadSpec.load(spec.save(tmp_path / "spec.json"))
    assert back.to_dict() == spec.to_dict()
    return back


def test_constant_lengths_fit_point_masses_and_synthesize_back_exactly(tmp_path):
    """The report: every request 400 in / 100 out ended `fit` with `copula.rho: in (-1, 1)`
    (the correlation of constant data is NaN)."""
    spec = fitting.fit(frame(poisson_times(500), 400, 100)).spec
    ln = spec.lengths
    for marginal, value in ((ln.input, 400.0), (ln.output, 100.0)):
        assert [(m.value, m.prob) for m in marginal.empirical.point_masses] == [(value, 1.0)]
        assert sum(marginal.empirical.probs) == 0.0
        assert (marginal.min, marginal.max, marginal.mean) == (value, value, value)
    assert ln.dependence.copula.kind == "independent" and ln.dependence.copula.rho == 0.0
    assert ln.dependence.spearman == 0.0
    assert ln.dependence.load_coupling is None
    assert ln.context_limit == 500
    f = synth.generate(round_trip(spec, tmp_path), duration_s=600, seed=3).frame
    assert f.height > 400
    assert f["input_tokens"].unique().to_list() == [400]
    assert f["output_tokens"].unique().to_list() == [100]


def test_all_zero_lengths_fit_and_synthesize_zeros(tmp_path):
    spec = fitting.fit(frame(poisson_times(300), 0, 0)).spec
    ln = spec.lengths
    assert [(m.value, m.prob) for m in ln.output.empirical.point_masses] == [(0.0, 1.0)]
    assert ln.dependence.copula.kind == "independent"
    assert ln.context_limit is None  # a largest total of 0 tokens is no limit
    f = synth.generate(round_trip(spec, tmp_path), duration_s=300, seed=1).frame
    assert f.height > 200
    assert f["input_tokens"].unique().to_list() == [0] == f["output_tokens"].unique().to_list()


def test_single_output_value_with_varied_inputs(tmp_path):
    rng = np.random.default_rng(5)
    inp = rng.integers(1, 4000, 400)
    spec = fitting.fit(frame(poisson_times(400), inp, 7)).spec
    ln = spec.lengths
    assert [(m.value, m.prob) for m in ln.output.empirical.point_masses] == [(7.0, 1.0)]
    assert ln.dependence.copula.kind == "independent"
    assert ln.input.empirical.point_masses == []  # the varied side keeps its histogram
    f = synth.generate(round_trip(spec, tmp_path), duration_s=400, seed=2).frame
    assert f["output_tokens"].unique().to_list() == [7]
    assert f["input_tokens"].n_unique() > 50
    assert f["input_tokens"].min() >= 1 and f["input_tokens"].max() <= inp.max()


@pytest.mark.parametrize("value", [1, INT32_MAX])
def test_constant_extreme_values_are_point_masses(value, tmp_path):
    """1 token (no cap point mass below 2) and the int32 limit (no count table of 2**31)."""
    spec = fitting.fit(frame(poisson_times(50), value, value)).spec
    assert [(m.value, m.prob) for m in spec.lengths.input.empirical.point_masses] == [
        (float(value), 1.0)
    ]
    f = synth.generate(round_trip(spec, tmp_path), duration_s=60, seed=1).frame
    assert f["input_tokens"].unique().to_list() == [value]
    assert f["output_tokens"].unique().to_list() == [value]


def test_zeros_and_ones_only_fit(tmp_path):
    """{0, 1} on both sides: the positive pairs are all (1, 1), constant: no dependence."""
    rng = np.random.default_rng(4)
    t = poisson_times(200)
    spec = fitting.fit(frame(t, rng.integers(0, 2, 200), rng.integers(0, 2, 200))).spec
    assert spec.lengths.dependence.copula.kind == "independent"
    f = synth.generate(round_trip(spec, tmp_path), duration_s=200, seed=1).frame
    assert set(f["input_tokens"].unique().to_list()) <= {0, 1}


def test_perfect_rank_dependence_is_rho_one(tmp_path):
    """input == output (varied): the copula ρ is 1 (to rounding), a valid comonotone copula
    (`validate` now takes [−1, 1], it refused exactly ±1); synth then pairs equal ranks."""
    x = np.random.default_rng(6).integers(1, 3000, 300)
    spec = fitting.fit(frame(poisson_times(300), x, x)).spec
    dep = spec.lengths.dependence
    assert dep.copula.kind == "gaussian" and dep.copula.rho == pytest.approx(1.0)
    assert dep.spearman == pytest.approx(1.0)
    f = synth.generate(round_trip(spec, tmp_path), duration_s=300, seed=1).frame
    assert (f["input_tokens"] == f["output_tokens"]).all()


def test_every_request_failed_is_a_fit_error():
    """Used to end in a SchemaError about `output_tokens` having no values."""
    with pytest.raises(FitError, match="all 20 requests are marked failed"):
        fitting.fit(frame(poisson_times(20), 50, 0, failed=np.ones(20, bool)))


def test_identical_timestamps_are_a_fit_error_that_says_so():
    with pytest.raises(FitError, match=r"all 12 arrivals are at the same time \(5 s\)"):
        fitting.fit(frame(np.full(12, 5.0), 10, 10))


def test_gaps_below_float_resolution_are_ties():
    """A 2e-316 s gap among gaps of a week used to overflow the lognormal mean
    (OverflowError from math.exp); it is a tie at that magnitude."""
    t = np.array([0.0, 2.2e-316, *(604800.0 + np.cumsum(np.full(10, 0.003)))])
    fit = fitting.fit(frame(t, 5, 5))
    assert any("less than float resolution" in n for n in fit.spec.notes)
    fit.spec.validate()


def test_a_denormal_span_is_a_fit_error_not_an_infinite_rate():
    """Found by `make fuzz`: nine arrivals at 0 and one at 1.1e-316 s fitted, then the spec
    refused to save (`spec.source.rate_per_s: inf is not a finite number`)."""
    t = np.array([0.0] * 9 + [1.0964e-316])
    with pytest.raises(FitError, match=r"the 10 arrivals span 1\.0964e-316 s: .* beyond the float"):
        fitting.fit(frame(t, 0, 0))


def test_missing_or_non_finite_arrival_times_are_input_errors():
    f = frame(poisson_times(20), 5, 5).with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(None)
        .otherwise(pl.col("arrival_s"))
        .alias("arrival_s")
    )
    with pytest.raises(InputError, match="arrival_s: 1 rows have no arrival time"):
        fitting.fit(f)
    t = poisson_times(20)
    t[4] = math.nan
    with pytest.raises(InputError, match="arrival_s: 1 arrival times are NaN or infinite"):
        fitting.fit(frame(t, 5, 5))


def test_a_week_long_gap_in_a_short_trace_fits_a_renewal(tmp_path):
    """10 requests with a week of quiet: the burst regime had one window and a ValueError
    (max of an empty array) escaped; now the renewal model stays, with a note why."""
    t = poisson_times(10)
    t[-1] += 7 * 86400
    fit = fitting.fit(frame(t, np.arange(10) + 5, np.arange(10) + 3))
    assert fit.spec.arrivals.model == "renewal"
    assert any(n.startswith("no burst regime:") for n in fit.spec.notes)
    round_trip(fit.spec, tmp_path)


def test_burst_window_beyond_the_largest_nice_value():
    """default_burst_window raised StopIteration (its table of nice values ended at 5e5 s)."""
    assert default_burst_window(1e12, 1e-6) == 2e8  # ≥ 1e12 s / 6,000 windows
    assert default_burst_window(3600, 5.0) == 5.0
    assert default_burst_window(1e9, 1e-3) == 2e5


def test_a_sparse_trace_over_decades_fits_without_materialising_windows(tmp_path):
    """16 requests ~1e8 s apart (timestamps up to the int32 limit): the dispersion curve used
    to allocate a count per 0.1-s window (MemoryError); now sparse statistics, a bounded
    number of 10-minute windows in the spec, and no ACF/Hurst (NaN)."""
    t = poisson_times(16, rate=1e-8)
    fit = fitting.fit(frame(t, 3, 4))
    burst = fit.burstiness
    assert math.isnan(burst.hurst) and np.isnan(burst.acf).all()
    assert burst.dispersion.height > 0 and burst.dispersion["idc"].is_finite().all()
    assert len(fit.spec.arrivals.windows) <= 1000
    path = fit.spec.save(tmp_path / "spec.json")
    assert path.stat().st_size < 500_000


def test_a_week_gap_on_a_millisecond_grid():
    """A 1-ms timestamp grid and a week-long gap: the grid KS/AD tabulated every cell up to
    6e8 (4.8 GB); now KS on the observed cells, AD not available (null)."""
    t = np.array([0.0, 0.001, *np.full(7, 604800.001), 604800.0020000001])
    fit = fitting.fit(frame(t, 5, 5))
    assert fit.spec.arrivals.resolution_s == pytest.approx(0.001)
    cand = fit.spec.arrivals.candidates[0]
    assert cand.diagnostics.ks is not None and 0 <= cand.diagnostics.ks <= 1
    assert cand.diagnostics.ad is None or math.isnan(cand.diagnostics.ad)
    assert WorkloadSpec.from_json(fit.spec.to_json()).arrivals.candidates[0].diagnostics.ad is None


def test_sub_picosecond_gaps_fit():
    """Gaps of 1e-12 s: the standard-error step (an absolute 1e-12) took the scale to 0 and
    `math.log(0)` raised a ValueError."""
    fit = fitting.fit(frame(np.arange(16) * 1e-12, 5, 5))
    fit.spec.validate()
    assert fit.arrivals.mean_gap_s == pytest.approx(1e-12)


def test_fourteen_days_of_hours_decompose():
    """A trace of exactly 14 days of hourly windows: MSTL silently dropped the weekly period
    (it needs more than twice its length) and indexing its result raised an IndexError."""
    t = np.linspace(0.0, 14 * 86400 + 1800, 400)
    report = fitting.burstiness(frame(t, 1, 1))
    decomposition = report.groups[0].decomposition
    assert decomposition is not None and decomposition.periods == [24]


@pytest.mark.parametrize(
    ("family", "shape"),
    [("exponential", 1.0), ("gamma", 0.5), ("weibull", 0.7), ("lognormal", 1.3)],
)
def test_grid_cdf_is_the_running_sum_of_the_grid_pmf(family, shape):
    """The closed form the thinned grid KS uses equals Σ P(0 … k) of the censored model."""
    from burstlab.fitting.families import grid_cdf, grid_pmf

    k = np.arange(0.0, 400.0)
    pmf = grid_pmf(family, shape, 3.0, k, 1.0)
    assert grid_cdf(family, shape, 3.0, k, 1.0) == pytest.approx(np.cumsum(pmf), abs=1e-12)


POSITIVE = "must be a finite number > 0"


@pytest.mark.parametrize(
    ("call", "param", "needle"),
    [
        # numpy's ValueError from a negative bincount, for 0, -1 and NaN alike
        (lambda t: fitting.fit_arrivals(t, resolution_s=0.0), "resolution_s", POSITIVE),
        (lambda t: fitting.fit_arrivals(t, resolution_s=-1.0), "resolution_s", POSITIVE),
        (lambda t: fitting.fit_arrivals(t, resolution_s=math.nan), "resolution_s", POSITIVE),
        # a FitError about "2 windows of -5 s"
        (lambda t: fitting.fit_modulation(t, window_s=-5.0), "window_s", POSITIVE),
        (lambda t: fitting.fit_modulation(t, curve_window_s=0.0), "curve_window_s", POSITIVE),
        # min() of an empty sequence
        (lambda t: fitting.fit_modulation(t, max_states=0), "max_states", "integer ≥ 1"),
        # ZeroDivisionError in the 10-minute windows
        (lambda t: fitting.burstiness(frame(t, 1, 1), window_s=0.0), "window_s", POSITIVE),
    ],
)
def test_bad_fitting_parameters_are_usage_errors(call, param, needle):
    with pytest.raises(UsageError) as info:
        call(poisson_times(500))
    assert info.value.param == param
    assert needle in str(info.value)


def test_modulation_of_too_few_arrivals_is_a_fit_error():
    """An empty array raised an IndexError (t[-1])."""
    for t in (np.zeros(0), np.array([3.0])):
        with pytest.raises(FitError, match="needs at least 2 arrivals"):
            fitting.fit_modulation(t)


def test_a_group_that_cannot_be_fitted_is_noted_not_fatal(tmp_path):
    """by="model" where one model's requests all failed: its FitError ended the whole fit."""
    ok = frame(poisson_times(300), np.arange(300) % 50 + 1, np.arange(300) % 30 + 1)
    bad = frame(poisson_times(250, seed=1), 20, 0, failed=np.ones(250, bool))
    both = pl.concat(
        [ok.with_columns(model=pl.lit("good")), bad.with_columns(model=pl.lit("broken"))]
    )
    spec = fitting.fit(both, by="model").spec
    assert [g.name for g in spec.groups] == ["good"] and spec.groups[0].weight == 1.0
    assert any(n.startswith("group 'broken': not fitted (all 250 requests") for n in spec.notes)
    round_trip(spec, tmp_path)
