"""The workload spec: JSON round trip (one non-finite number policy, save refuses what load
refuses), validation messages, and the distribution helpers synth uses."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats as st

from burstlab import fitting, traces
from burstlab.errors import SpecError
from burstlab.spec import (
    ArrivalSpec,
    BurstRegime,
    Copula,
    Dependence,
    EmpiricalDist,
    FamilyFit,
    FitDiagnostics,
    GroupSpec,
    LengthSpec,
    LoadCoupling,
    Marginal,
    PointMass,
    RateCurve,
    SourceFingerprint,
    WorkloadSpec,
)


def _marginal() -> Marginal:
    emp = EmpiricalDist(
        edges=[1.0, 10.0, 100.0, 1000.0],
        probs=[0.2, 0.5, 0.2],
        point_masses=[PointMass(0.0, 0.05), PointMass(1000.0, 0.05)],
    )
    fit = FamilyFit(
        "lognormal",
        {"s": 1.0, "scale": 50.0},
        "mle",
        FitDiagnostics(n=100, k=2, loglik=-500.0, aic=1004.0, bic=1009.2, ks=0.05, ad=0.7),
    )
    return Marginal(empirical=emp, min=0, max=1000, mean=120.0, chosen=fit, candidates=[fit])


def _spec() -> WorkloadSpec:
    gamma = FamilyFit(
        "gamma",
        {"a": 0.5, "scale": 0.4},
        "interval-censored",
        FitDiagnostics(n=1000, k=2, loglik=-10.0, aic=24.0, bic=33.8, ks=0.01, ad=0.3),
        stderr={"a": 0.02, "scale": 0.03},
    )
    within = FamilyFit("weibull", {"c": 0.8, "scale": 0.88}, "mean-preserving")
    regime = BurstRegime(
        window_s=10.0,
        levels=[0.5, 2.0],
        transition=[[0.9, 0.1], [0.3, 0.7]],
        initial=[0.75, 0.25],
        within=within,
    )
    arrivals = ArrivalSpec(
        renewal=gamma,
        candidates=[gamma],
        model="modulated",
        resolution_s=1.0,
        rate_curve=RateCurve(window_s=600.0, rates_per_s=[5.0, 6.0]),
        burst_regime=regime,
    )
    lengths = LengthSpec(
        input=_marginal(),
        output=_marginal(),
        dependence=Dependence(
            spearman=0.1,
            copula=Copula("gaussian", 0.12),
            load_coupling=LoadCoupling(window_s=60, corr=-0.8, elasticity=-0.5, n_windows=58),
        ),
    )
    src = SourceFingerprint(source="azure-llm-2023-conv", rows=1000, duration_s=200, rate_per_s=5)
    return WorkloadSpec(source=src, arrivals=arrivals, lengths=lengths)


def test_round_trip_is_exact(tmp_path):
    spec = _spec()
    path = spec.save(tmp_path / "spec.json")
    back = WorkloadSpec.load(path)
    assert back == spec
    assert back.sha256() == spec.sha256()
    doc = json.loads(path.read_text())
    assert next(iter(doc)) == "burstlab_spec" and doc["burstlab_spec"] == 1
    assert doc["arrivals"]["renewal"]["params"] == {"a": 0.5, "scale": 0.4}


def test_groups_nest_specs(tmp_path):
    inner = _spec()
    spec = _spec()
    spec.groups = [GroupSpec("a", 0.25, inner, key="model"), GroupSpec("b", 0.75, inner)]
    back = WorkloadSpec.from_json(spec.to_json())
    assert back.groups[1].spec == inner


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(burstlab_spec=2), "expected burstlab_spec=1, found 2"),
        (lambda d: d["arrivals"]["renewal"].update(family="cauchy"), "unknown family 'cauchy'"),
        (
            lambda d: d["arrivals"]["renewal"]["params"].update(a=-1),
            "spec.arrivals.renewal.params.a",
        ),
        (lambda d: d["arrivals"]["renewal"]["params"].pop("a"), "gamma takes ['a', 'scale']"),
        (
            lambda d: d["arrivals"]["burst_regime"]["transition"][0].__setitem__(0, 0.5),
            "transition[0]",
        ),
        (lambda d: d["arrivals"].update(model="psychic"), "spec.arrivals.model: expected one of"),
        (lambda d: d["lengths"]["input"]["empirical"].update(probs=[0.2]), "len(edges)"),
        (lambda d: d["source"].update(colour="red"), "unknown field(s) ['colour']"),
        (lambda d: d["source"].pop("rows"), "missing field(s) ['rows']"),
        (lambda d: d["source"].update(rows="many"), "spec.source.rows: expected an integer"),
        (
            lambda d: d["lengths"]["input"]["empirical"]["edges"].__setitem__(1, 0.5),
            "spec.lengths.input.empirical.edges: edges must be strictly increasing",
        ),
        (
            lambda d: d["lengths"]["input"]["empirical"]["point_masses"][0].update(value=-1.0),
            "spec.lengths.input.empirical.point_masses[0].value: must be finite and ≥ 0",
        ),
        (
            lambda d: d["arrivals"].update(
                renewal={"family": "pareto", "params": {"b": 0.9, "scale": 1.0}, "method": "given"}
            ),
            "spec.arrivals.renewal.params: pareto {'b': 0.9, 'scale': 1.0} has no finite mean",
        ),
        (
            lambda d: d["arrivals"]["burst_regime"].update(
                within={
                    "family": "lognormal-mixture",
                    "params": {"w_1": 1.0, "s_1": 1.0},
                    "method": "given",
                }
            ),
            "spec.arrivals.burst_regime.within.params: lognormal-mixture with 1 components takes",
        ),
    ],
)
def test_bad_specs_are_named(mutate, needle):
    doc = _spec().to_dict()
    mutate(doc)
    with pytest.raises(SpecError) as info:
        WorkloadSpec.from_dict(doc)
    assert needle in str(info.value)


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n "burstlab_spec": 1,\n oops\n}')
    with pytest.raises(SpecError, match=r"broken.json, line 3"):
        WorkloadSpec.load(path)


def test_family_matches_scipy():
    fit = FamilyFit("weibull", {"c": 0.7, "scale": 2.0}, "mle")
    u = np.linspace(0.01, 0.99, 9)
    np.testing.assert_allclose(fit.ppf(u), st.weibull_min(0.7, scale=2.0).ppf(u))
    assert fit.mean() == pytest.approx(st.weibull_min(0.7, scale=2.0).mean())


def test_mixture_ppf_inverts_cdf():
    mix = FamilyFit(
        "lognormal-mixture",
        {"w_1": 0.3, "s_1": 0.5, "scale_1": 10.0, "w_2": 0.7, "s_2": 0.8, "scale_2": 300.0},
        "mle",
    )
    u = np.array([0.01, 0.2, 0.3, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(mix.cdf(mix.ppf(u)), u, rtol=1e-9)
    expected = 0.3 * 10 * np.exp(0.5**2 / 2) + 0.7 * 300 * np.exp(0.8**2 / 2)
    assert mix.mean() == pytest.approx(expected)


def test_empirical_sampling_reproduces_masses_and_bins():
    m = _marginal()
    x = m.ppf(np.random.default_rng(1).random(200_000))
    assert np.mean(x == 0) == pytest.approx(0.05, abs=0.003)
    assert np.mean(x == 1000) == pytest.approx(0.05, abs=0.003)
    assert np.mean((x >= 10) & (x < 100)) == pytest.approx(0.5, abs=0.01)
    u = np.linspace(0.06, 0.94, 50)  # the continuous part; atoms sit at both ends
    np.testing.assert_allclose(m.empirical.cdf(m.empirical.ppf(u)), u, atol=1e-9)
    assert x.min() >= 0 and x.max() <= 1000


def test_empirical_mass_inside_bin_splits_it():
    emp = EmpiricalDist(edges=[1.0, 100.0], probs=[0.5], point_masses=[PointMass(10.0, 0.5)])
    x = emp.ppf(np.random.default_rng(0).random(100_000))
    assert np.mean(x == 10.0) == pytest.approx(0.5, abs=0.01)
    assert np.mean(x < 10.0) == pytest.approx(0.25, abs=0.01)


def test_rate_curve_cycles():
    rc = RateCurve(window_s=10.0, rates_per_s=[1.0, 3.0])
    np.testing.assert_array_equal(rc.rate_at([0.0, 9.9, 10.0, 25.0]), [1.0, 1.0, 3.0, 1.0])
    assert rc.mean_rate() == 2.0


def test_rescaled_mixture_has_unit_mean():
    mix = FamilyFit(
        "lognormal-mixture",
        {"w_1": 0.6, "s_1": 3.0, "scale_1": 0.005, "w_2": 0.4, "s_2": 0.5, "scale_2": 0.12},
        "mean-preserving",
    )
    unit = mix.rescaled(1 / mix.mean())
    assert unit.mean() == pytest.approx(1.0)
    assert unit.params["s_1"] == 3.0 and unit.params["w_2"] == 0.4


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_save_refuses_a_non_finite_required_number_and_writes_nothing(tmp_path):
    """The reported bug: a NaN statistic used to save as null, then fail to load. Now save
    refuses it, names the field, and leaves no file (nor a temp file) behind."""
    spec = _spec()
    spec.lengths.dependence.load_coupling.corr = math.nan
    with pytest.raises(SpecError, match=r"spec\.lengths\.dependence\.load_coupling\.corr: nan "):
        spec.save(tmp_path / "spec.json")
    spec = _spec()
    spec.arrivals.burst_regime.stationary = [0.75, math.inf]  # an optional list of numbers
    with pytest.raises(SpecError, match=r"spec\.arrivals\.burst_regime\.stationary\[1\]: inf "):
        spec.save(tmp_path / "spec.json")
    assert _files(tmp_path) == []


def test_non_finite_optional_diagnostic_is_null(tmp_path):
    spec = _spec()
    spec.arrivals.renewal.diagnostics.ks = math.nan
    spec.lengths.input.chosen.diagnostics.loglik = -math.inf
    path = spec.save(tmp_path / "spec.json")
    doc = json.loads(path.read_text())
    assert doc["arrivals"]["renewal"]["diagnostics"]["ks"] is None
    back = WorkloadSpec.load(path)
    assert back.arrivals.renewal.diagnostics.ks is None
    assert back.lengths.input.chosen.diagnostics.loglik is None
    assert back.arrivals.renewal.diagnostics.ad == 0.3
    assert _files(tmp_path) == ["spec.json"]


def test_save_checks_the_round_trip(tmp_path, monkeypatch):
    """A spec whose JSON would read back as a different spec is refused before writing."""
    spec = _spec()
    other = _spec()
    other.notes = ["changed on the way back"]
    monkeypatch.setattr(
        WorkloadSpec, "from_json", classmethod(lambda cls, text, where="spec": other)
    )
    with pytest.raises(SpecError, match="does not read back to the same JSON"):
        spec.save(tmp_path / "spec.json")
    assert _files(tmp_path) == []


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text("old")
    _spec().save(path)
    assert WorkloadSpec.load(path) == _spec()
    assert _files(tmp_path) == ["spec.json"]


@pytest.mark.parametrize(
    "sample", ["azure-llm-2023-conv", "azure-llm-2023-code", "mooncake-conversation"]
)
def test_shipped_samples_specs_round_trip_exactly(sample, tmp_path):
    spec = fitting.fit(traces.sample_frame(sample)).spec
    path = spec.save(tmp_path / "spec.json")
    back = WorkloadSpec.load(path)
    assert back.to_json() == spec.to_json()
    assert back.sha256() == spec.sha256()
    assert path.read_text() == back.to_json() + "\n"


def test_fitted_spec_with_a_nan_statistic_is_refused_at_save(tmp_path):
    """The report, on a fitted spec: a statistic that came out NaN saved (as null), and the
    file then failed to load ("expected a number, found None"). Save refuses it, naming the
    field, and writes nothing; load refuses the same number, however it is spelled."""
    spec = fitting.fit(traces.sample_frame("azure-llm-2023-code")).spec
    good = spec.to_dict()
    spec.source.rate_per_s = math.nan  # a required statistic no check looks at
    with pytest.raises(SpecError, match=r"^spec\.source\.rate_per_s: nan is not a finite"):
        spec.save(tmp_path / "spec.json")
    spec.source.rate_per_s = good["source"]["rate_per_s"]
    spec.lengths.dependence.spearman = math.nan
    with pytest.raises(SpecError, match=r"^spec\.lengths\.dependence\.spearman: "):
        spec.save(tmp_path / "spec.json")
    assert _files(tmp_path) == []
    # what the old save wrote (null), and the non-finite tokens, fail to load by field path
    for token in ("null", "NaN", "Infinity", "1e999"):
        doc = json.dumps(good).replace(
            f'"rate_per_s": {json.dumps(good["source"]["rate_per_s"])}', f'"rate_per_s": {token}'
        )
        assert token in doc
        with pytest.raises(SpecError, match=r"^spec\.source\.rate_per_s: expected a "):
            WorkloadSpec.from_json(doc)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (
            lambda d: d["lengths"]["input"]["chosen"]["diagnostics"].update(ks=math.nan),
            "spec.lengths.input.chosen.diagnostics.ks: expected a finite number, found NaN",
        ),
        (
            lambda d: d["arrivals"]["rate_curve"]["rates_per_s"].__setitem__(1, -math.inf),
            "spec.arrivals.rate_curve.rates_per_s[1]: expected a finite number, found -Infinity",
        ),
        (
            lambda d: d["source"].update(rows=2**70),
            "spec.source.rows: an integer of about 22 digits does not fit in a 64-bit integer",
        ),
        (
            lambda d: d["arrivals"]["renewal"]["params"].update(a=10**400),
            "spec.arrivals.renewal.params.a: an integer of about 401 digits is beyond the float",
        ),
        (lambda d: d["lengths"]["output"].update(min=-5), "spec.lengths.output.min: a count"),
        (lambda d: d["lengths"]["output"].update(max=1e12), "spec.lengths.output.max: must be ≤"),
        (
            lambda d: d["lengths"].update(context_limit=0),
            "spec.lengths.context_limit: must be ≥ 1 token or null, found 0",
        ),
        (
            lambda d: d["lengths"]["dependence"].update(spearman=1.5),
            "spec.lengths.dependence.spearman: must be in [-1, 1], found 1.5",
        ),
        (
            lambda d: d["lengths"]["dependence"]["copula"].update(rho=-1.01),
            "spec.lengths.dependence.copula.rho: must be in [-1, 1], found -1.01",
        ),
        (lambda d: d.pop("burstlab_spec"), "expected burstlab_spec=1, found nothing"),
        (lambda d: d.update(burstlab_spec=math.nan), "expected burstlab_spec=1, found NaN"),
    ],
)
def test_numbers_a_spec_cannot_hold_are_named(mutate, needle):
    """Found by the spec fuzz suite (tests/fuzz/test_spec_fuzz.py): NaN / Infinity / 1e999
    tokens, integers beyond 64 bits and negative or int32-overflowing counts loaded silently
    (and later failed to save, or generated negative token counts)."""
    doc = _spec().to_dict()
    mutate(doc)
    with pytest.raises(SpecError) as info:
        WorkloadSpec.from_json(json.dumps(doc))  # NaN / Infinity tokens where non-finite
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_perfect_dependence_and_a_huge_rejected_value_are_one_line():
    spec = _spec()
    spec.lengths.dependence.copula.rho = 1.0  # comonotone: a valid Gaussian copula
    assert WorkloadSpec.from_json(spec.to_json()).lengths.dependence.copula.rho == 1.0
    doc = _spec().to_dict()
    doc["lengths"]["input"]["empirical"]["edges"] = {"x": list(range(1000))}
    with pytest.raises(SpecError, match=r"expected a list, found \{'x': \[0, 1, 2,.*…$"):
        WorkloadSpec.from_dict(doc)
