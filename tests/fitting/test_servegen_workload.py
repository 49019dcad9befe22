"""ServeGen import, the whole-workload fit on real samples, and the CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from burstlab import fitting
from burstlab.cli import app
from burstlab.errors import InputError
from burstlab.fitting.servegen import client_spec, import_servegen, read_trace
from burstlab.spec import WorkloadSpec
from burstlab.traces import sample_frame


def test_servegen_client_windows_and_lengths(samples):
    folder = samples / "servegen" / "language" / "m-large"
    spec = client_spec(folder / "chunk-39-trace.csv", folder / "chunk-39-dataset.json")
    trace = read_trace(folder / "chunk-39-trace.csv")
    assert trace.height == 2016
    assert spec.arrivals.model == "windowed"
    assert len(spec.arrivals.windows) == 2016
    active = [w for w in spec.arrivals.windows if w.fit is not None]
    assert len(active) == trace.filter(trace["pattern"].is_not_null()).height
    first = active[0]
    row = trace.filter(trace["pattern"].is_not_null()).row(0, named=True)
    assert first.fit.params == pytest.approx(
        {"c" if row["pattern"] == "Weibull" else "a": row["shape"], "scale": row["scale"]}
    )
    assert spec.source.rows == round(trace["rate"].sum() * 600)
    assert spec.lengths is not None and spec.lengths.input.max > spec.lengths.input.min


@pytest.mark.slow
def test_servegen_import_groups_round_trip(samples, tmp_path):
    spec = import_servegen([samples / "servegen"])
    assert len(spec.groups) == 4
    assert sum(g.weight for g in spec.groups) == pytest.approx(1.0)
    # chunk-0 of m-large has no dataset file in the sample: it borrows, and says so
    chunk0 = next(g for g in spec.groups if g.name.endswith("m-large/chunk-0"))
    assert chunk0.spec.lengths is not None
    assert any("borrowed from servegen:language/m-large/chunk-39" in n for n in chunk0.spec.notes)
    path = spec.save(tmp_path / "servegen.json")
    assert WorkloadSpec.load(path) == spec


def test_servegen_bad_line_is_named(tmp_path):
    bad = tmp_path / "chunk-1-trace.csv"
    bad.write_text("0,1.0,2.0,Gamma,0.5,1.0\n600,1.0,2.0,Gamma\n")
    with pytest.raises(InputError, match=r"chunk-1-trace.csv, line 2: wrong field count"):
        read_trace(bad)


@pytest.mark.slow
def test_fit_workload_on_azure_conv_is_complete(tmp_path):
    fit = fitting.fit(sample_frame("azure-llm-2023-conv"))
    spec = fit.spec
    assert spec.source.rows == 19_366
    assert spec.source.sha256 and len(spec.source.sha256) == 64
    assert spec.arrivals.model == "modulated"
    assert spec.arrivals.renewal.family == "gamma"
    assert len(spec.arrivals.windows) == 6
    assert spec.lengths.dependence.load_coupling.window_s == 60.0
    back = WorkloadSpec.load(spec.save(tmp_path / "conv.json"))
    assert back == spec
    # same rows, same fingerprint: the fit is deterministic
    assert fitting.fit(sample_frame("azure-llm-2023-conv")).spec.sha256() == spec.sha256()


@pytest.mark.slow
def test_fit_workload_where_and_by(tmp_path):
    frame = sample_frame("azure-llm-2023-conv")
    half = fitting.fit(frame, where="arrival_s < 1750")
    assert half.spec.source.rows == int((frame["arrival_s"] < 1750).sum())
    assert half.spec.source.where == "arrival_s < 1750"
    mixed = frame.with_columns(model=np.where(np.arange(frame.height) % 4 == 0, "big", "small"))
    fit = fitting.fit(mixed, by="model", modulation=False)
    names = [g.name for g in fit.spec.groups]
    assert names == ["big", "small"]
    assert fit.spec.groups[0].weight == pytest.approx(0.25, abs=1e-4)
    assert fit.spec.groups[0].spec.source.rows + fit.spec.groups[1].spec.source.rows == 19_366


def test_mooncake_sample_keeps_its_zero_gaps():
    fit = fitting.fit(sample_frame("mooncake-conversation"))
    assert fit.spec.arrivals.resolution_s == pytest.approx(3.0, abs=2e-3)
    assert fit.spec.arrivals.renewal.method == "interval-censored mean-preserving"
    assert fit.arrivals.n_gaps == 2999  # every gap, zeros included
    assert fit.spec.prefix is not None and 0.2 < fit.spec.prefix.hit_rate < 0.5
    assert fit.spec.arrivals.burst_regime.window_s == pytest.approx(15.0, abs=0.01)


@pytest.mark.slow
def test_cli_fit_writes_spec_and_report(tmp_path):
    runner = CliRunner()
    out = tmp_path / "spec.json"
    report = tmp_path / "report.html"
    res = runner.invoke(
        app,
        ["fit", "azure-llm-2023-code", "--out", str(out), "--report", str(report)],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["burstlab_spec"] == 1 and doc["source"]["rows"] == 8819
    page = report.read_text()
    assert "Inter-arrival candidates" in page and "vega" in page
    res = runner.invoke(app, ["burstiness", "azure-llm-2023-code", "--curve"])
    assert res.exit_code == 0, res.output
    assert "idc_60s" in res.output
    res = runner.invoke(app, ["fit", "no-such-dataset"])
    assert res.exit_code != 0
