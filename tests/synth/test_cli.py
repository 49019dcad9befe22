"""The synth stage's commands, run through the real `burstlab` typer app."""

from __future__ import annotations

import json

import polars as pl
import pytest
from synth_specs import make_spec
from typer.testing import CliRunner

from burstlab.cli import app
from burstlab.parquet import read_metadata
from burstlab.synth.generate import generate
from burstlab.synth.suite import split_holdout
from burstlab.traces import sample_frame

runner = CliRunner()


def test_synth_command_writes_each_format(tmp_path, data_dir):
    spec = make_spec()
    spec_path = spec.save(tmp_path / "spec.json")
    for name, fmt in (("w.parquet", None), ("w.jsonl", "mooncake"), ("w.csv", "burstgpt")):
        args = ["--data-dir", str(data_dir), "synth", str(spec_path), "--duration", "60"]
        args += ["--seed", "3", "--rate-scale", "2", "--out", str(tmp_path / name)]
        if fmt:
            args += ["--format", fmt]
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
        assert "requests over 60 s" in done.output
    direct = generate(spec, duration_s=60, seed=3, rate_scale=2).frame
    back = pl.read_parquet(tmp_path / "w.parquet")
    assert back.equals(direct)
    assert read_metadata(tmp_path / "w.parquet")["rate_scale"] == 2.0
    lines = (tmp_path / "w.jsonl").read_text().splitlines()
    assert len(lines) == direct.height
    assert json.loads(lines[0])["input_length"] == direct["input_tokens"][0]


def test_synth_command_needs_an_output(tmp_path, data_dir):
    spec_path = make_spec().save(tmp_path / "spec.json")
    done = runner.invoke(app, ["synth", str(spec_path)])
    assert done.exit_code != 0


def test_fidelity_command_with_envelope_and_report(tmp_path, data_dir):
    real = sample_frame("azure-llm-2023-conv")
    train, held = split_holdout(real, 1800, 900)
    train.write_parquet(tmp_path / "train.parquet")
    held.write_parquet(tmp_path / "held.parquet")
    # a "synthetic" candidate that is really a training window: it must land in the envelope
    train.filter(pl.col("arrival_s") >= 900).with_columns(pl.col("arrival_s") - 900).write_parquet(
        tmp_path / "cand.parquet"
    )
    report = tmp_path / "fid.html"
    done = runner.invoke(
        app,
        [
            "fidelity",
            str(tmp_path / "held.parquet"),
            str(tmp_path / "cand.parquet"),
            "--train",
            str(tmp_path / "train.parquet"),
            "--duration",
            "900",
            "--out",
            str(tmp_path / "verdicts.json"),
            "--report",
            str(report),
        ],
        terminal_width=200,
    )
    assert done.exit_code == 0, done.output
    for word in ("dispersion_60s", "w1_log_output", "poisson", "burstgpt_demo"):
        assert word in done.output
    text = report.read_text()
    assert "Index of dispersion" in text and "<table>" in text
    rows = json.loads((tmp_path / "verdicts.json").read_text())["rows"]
    synthetic = {r["metric"]: r for r in rows if r["generator"] == "synthetic"}
    assert synthetic["dispersion_60s"]["within"] is True  # a training window is inside


@pytest.mark.slow
def test_synth_validate_refits_and_reports(tmp_path, data_dir):
    """`burstlab validate`: the spec's source is re-read from the catalog, refitted without its
    last 1,200 s, and the synthetic load is judged against those real rows."""
    from burstlab import fitting
    from burstlab.traces import ingest

    ingest("azure-llm-2023-code", sample=True, data_dir=data_dir)
    spec = fitting.fit(sample_frame("azure-llm-2023-code")).spec
    spec_path = spec.save(tmp_path / "code.json")
    report = tmp_path / "validate.html"
    done = runner.invoke(
        app,
        [
            "--data-dir",
            str(data_dir),
            "validate",
            str(spec_path),
            "--report",
            str(report),
        ],
        terminal_width=200,
    )
    assert done.exit_code == 0, done.output
    assert "held out 1200 s" in done.output
    assert "inside the real envelope on" in done.output
    text = report.read_text()
    assert "Share of seeds inside the envelope" in text and "Index of dispersion" in text


def test_synth_command_group_mix(tmp_path, data_dir):
    from synth_specs import grouped_spec

    spec_path = grouped_spec().save(tmp_path / "g.json")
    dest = tmp_path / "g.parquet"
    args = ["synth", str(spec_path), "--duration", "500", "--out", str(dest)]
    done = runner.invoke(app, [*args, "--mix", "ChatGPT=1", "--mix", "GPT-4=1"])
    assert done.exit_code == 0, done.output
    by = dict(pl.read_parquet(dest).group_by("model").len().iter_rows())
    assert by["ChatGPT"] / 500 == pytest.approx(10.0, rel=0.1)  # 20 req/s split 50/50
    bad = runner.invoke(app, [*args[:-1], str(tmp_path / "bad.parquet"), "--mix", "GPT-4"])
    assert bad.exit_code == 2 and "--mix: expected NAME=WEIGHT, found 'GPT-4'" in bad.output


def test_synth_model_override(tmp_path, data_dir):
    """--arrival-model renewal generates from the spec's renewal fit; the rows say it is another
    spec."""
    from burstlab.synth.generate import with_arrival_model

    spec = make_spec()  # a modulated spec with a burst regime
    assert spec.arrivals.model == "modulated"
    spec_path = spec.save(tmp_path / "spec.json")
    out = tmp_path / "renewal.parquet"
    args = [
        "synth",
        str(spec_path),
        "--duration",
        "60",
        "--seed",
        "2",
        "--arrival-model",
        "renewal",
    ]
    done = runner.invoke(app, [*args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    renewal = with_arrival_model(spec, "renewal")
    assert renewal.arrivals.model == "renewal" and spec.arrivals.model == "modulated"
    assert pl.read_parquet(out).equals(generate(renewal, duration_s=60, seed=2).frame)
    assert renewal.sha256() != spec.sha256()
    bad = runner.invoke(app, [*args[:-1], "bursty", "--out", str(tmp_path / "bad.parquet")])
    assert bad.exit_code == 2 and "--arrival-model:" in bad.output
    assert "unknown arrival model 'bursty'" in bad.output
    no_windows = runner.invoke(app, [*args[:-1], "windowed", "--out", str(tmp_path / "w.parquet")])
    assert no_windows.exit_code == 1 and "needs windows" in no_windows.output
