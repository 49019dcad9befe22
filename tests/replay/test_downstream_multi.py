"""Downstream fidelity over many seeds: the verdict rule on hand-made numbers, and the whole
procedure (fit, K real windows per part, K seeds per generator, a fresh engine per window,
interleaved) against real llama.cpp engines."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from burstlab import traces
from burstlab.cli import app
from burstlab.engines import local
from burstlab.engines.tinymodel import build_tiny_model
from burstlab.errors import UsageError
from burstlab.replay.client import ClientOptions
from burstlab.replay.downstream import (
    DOWNSTREAM_METRICS,
    REAL_HELDOUT,
    REAL_TRAIN,
    SLACK,
    SYNTH_SIDE,
    downstream_fidelity,
    judge,
    window_starts,
)
from burstlab.replay.goodput import parse_slo
from burstlab.replay.run import ReplayConfig
from burstlab.replay.schedule import ScheduleOptions
from burstlab.synth import suite

# -- the rule, on numbers checked by hand ------------------------------------------------------
# real held-out p99 E2E [1.0, 2.0], training [1.5, 3.0]: envelope [1.0, 3.0], widened by 25 %
# to [0.8, 3.75]; real spread max(2.0 - 1.0, 3.0 - 1.5) = 1.5, so a spread of 2.25 is allowed.
HELD, TRAIN = [1.0, 2.0], [1.5, 3.0]


def test_a_median_inside_the_widened_envelope_with_a_real_sized_spread_is_faithful():
    v = judge("p99_e2e_s", HELD, TRAIN, [2.0, 3.0, 3.5])
    assert (v["real_low"], v["real_high"]) == (1.0, 3.0)
    assert v["accept_low"] == pytest.approx(0.8) and v["accept_high"] == pytest.approx(3.75)
    assert v["real_spread"] == 1.5 and v["spread_limit"] == pytest.approx(2.25)
    assert (v["median"], v["min"], v["max"], v["spread"]) == (3.0, 2.0, 3.5, 1.5)
    assert v["location_ok"] and v["spread_ok"] and v["faithful"]


def test_a_median_outside_the_widened_envelope_fails_on_location():
    v = judge("p99_e2e_s", HELD, TRAIN, [3.0, 4.0, 5.0])  # median 4.0 > 3.75
    assert not v["location_ok"] and v["spread_ok"] and v["faithful"] is False


def test_a_spread_wider_than_one_and_a_half_real_spreads_fails():
    v = judge("p99_e2e_s", HELD, TRAIN, [0.9, 2.0, 3.3])  # spread 2.4 > 2.25, median 2.0 inside
    assert v["location_ok"] and not v["spread_ok"] and v["faithful"] is False


def test_the_edges_of_the_rule_are_inside():
    assert judge("p99_e2e_s", HELD, TRAIN, [0.8, 0.8])["location_ok"]
    assert judge("p99_e2e_s", HELD, TRAIN, [3.75])["location_ok"]
    assert judge("p99_e2e_s", HELD, TRAIN, [1.0, 3.25])["spread_ok"]  # spread exactly 2.25
    assert not judge("p99_e2e_s", HELD, TRAIN, [3.76])["location_ok"]


def test_attainment_is_widened_on_its_shortfall():
    # shortfalls 0.1, 0, 0.05, 0.02: accepted attainment [1 - 0.1 * 1.25, 1 - 0 / 1.25]
    held, train = [0.9, 1.0], [0.95, 0.98]
    v = judge("attainment", held, train, [0.88, 0.9, 0.95])
    assert v["accept_low"] == pytest.approx(0.875) and v["accept_high"] == pytest.approx(1.0)
    assert v["real_spread"] == pytest.approx(0.1) and v["faithful"]
    assert judge("attainment", held, train, [0.86, 0.87, 0.9])["location_ok"] is False
    # a multiplicative widening would have accepted 0.9 / 1.25 = 0.72; the shortfall does not
    assert judge("attainment", [1.0, 1.0], [1.0, 1.0], [0.8, 0.8])["faithful"] is False


def test_missing_values_give_no_verdict_and_nan_is_left_out():
    assert judge("cache_hit_rate", HELD, TRAIN, [None, None])["faithful"] is None
    assert judge("cache_hit_rate", [None], [None], [0.5])["faithful"] is None
    v = judge("p99_e2e_s", [*HELD, float("nan")], TRAIN, [2.0, float("nan")])
    assert v["real_high"] == 3.0 and v["median"] == 2.0 and v["faithful"]


def test_slack_and_spread_factor_are_parameters():
    assert judge("p99_e2e_s", HELD, TRAIN, [3.5], slack=0.0)["location_ok"] is False
    assert judge("p99_e2e_s", HELD, TRAIN, [1.0, 2.6], spread_factor=1.0)["spread_ok"] is False
    with pytest.raises(UsageError) as exc:
        judge("p99_e2e_s", HELD, TRAIN, [1.0], slack=-0.1)
    assert exc.value.param == "slack"


def test_the_slack_is_the_fidelity_suites():
    assert SLACK == suite.SLACK


def test_windows_are_spread_evenly_over_their_part():
    assert window_starts(0.0, 100.0, 3, 20.0) == [0.0, 40.0, 80.0]
    assert window_starts(600.0, 700.0, 1, 20.0) == [600.0]
    assert window_starts(0.0, 20.0, 2, 20.0) == [0.0, 0.0]  # overlapping, never outside
    with pytest.raises(UsageError) as exc:
        window_starts(0.0, 10.0, 2, 20.0)
    assert exc.value.param == "window_s"


def config(**schedule) -> ReplayConfig:
    return ReplayConfig(
        client=ClientOptions(url="http://127.0.0.1:1"),  # replaced by each engine's URL
        schedule=ScheduleOptions(max_input_tokens=64, max_output_tokens=8, **schedule),
        slo=parse_slo("ttft=2,tpot=0.5"),
        progress=False,
    )


@pytest.fixture(scope="module")
def azure() -> pl.DataFrame:
    return traces.scan("azure-llm-2023-conv").collect()


def test_bad_parameters_are_refused_before_any_engine_starts(azure, tmp_path):
    def no_engine():
        raise AssertionError("no engine may start")

    no_slo = ReplayConfig(client=ClientOptions(url="http://127.0.0.1:1"), progress=False)
    cases = [
        (dict(config=no_slo), "slo"),
        (dict(baselines=["zipf"]), "baselines"),
        (dict(window_s=700.0), "window_s"),
        (dict(heldout=(600.0, 610.0)), "heldout"),
        (dict(speedup=0.0), "speedup"),
        (dict(utilisation=1.5), "utilisation"),
    ]
    for kwargs, param in cases:
        args = {"config": config(), "train": (0.0, 600.0), "window_s": 20.0, **kwargs}
        with pytest.raises(UsageError) as exc:
            downstream_fidelity(azure, out=tmp_path / param, engine=no_engine, **args)
        assert exc.value.param == param


def test_the_cli_names_its_own_options_in_errors(tmp_path):
    res = CliRunner().invoke(
        app,
        ["downstream", "azure-llm-2023-conv", "--train-window", "0:10", "--window-length", "20",
         "--slo", "ttft=1", "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "--window-length:" in res.output and "does not fit" in res.output


# -- the whole procedure against real engines ---------------------------------------------------


@pytest.mark.engine
@pytest.mark.slow
def test_every_window_runs_on_its_own_engine_in_interleaved_order(azure, tmp_path_factory):
    root = tmp_path_factory.mktemp("engine")
    model = build_tiny_model(root / "tiny.gguf", "tiny")
    starts: list[int] = []
    running: list[int] = []

    class Tracked:
        """An engine start that records itself and checks none other is running."""

        def __enter__(self):
            assert not running, "an engine was still running"
            self.handle = local(gguf=model, alias="tiny", parallel=4, threads=1, data_dir=root)
            starts.append(self.handle.process.pid)
            running.append(self.handle.process.pid)
            return self.handle

        def __exit__(self, *exc):
            self.handle.stop()
            running.pop()
            return False

    out = tmp_path_factory.mktemp("downstream") / "result"
    result = downstream_fidelity(
        azure, config(), out, train=(0.0, 600.0), heldout=(600.0, 1200.0), windows=2,
        window_s=20.0, seed=7, baselines=["poisson"], engine=Tracked, utilisation=0.7,
        capacity_requests=16,
    )  # fmt: skip
    runs = result.runs

    # one capacity probe, then 4 sides × 2 windows, each on its own engine start, interleaved
    assert len(starts) == 1 + 8 and not running
    assert runs["engine_pid"].to_list() == starts[1:]
    sides = [REAL_HELDOUT, REAL_TRAIN, SYNTH_SIDE, "poisson"]
    assert runs["side"].to_list() == sides * 2
    assert runs["index"].to_list() == [0] * 4 + [1] * 4
    assert runs["order"].to_list() == list(range(8))
    assert runs.group_by("side").len().sort("side")["len"].to_list() == [2, 2, 2, 2]
    held = runs.filter(pl.col("side") == REAL_HELDOUT)
    train = runs.filter(pl.col("side") == REAL_TRAIN)
    assert held["start_s"].to_list() == [600.0, 1180.0]  # evenly over [600, 1200)
    assert train["start_s"].to_list() == [0.0, 580.0]
    assert runs.filter(pl.col("kind") != "real")["seed"].to_list() == [7, 7, 8, 8]

    # every real window replays exactly the trace's rows of that window
    for row in [*held.iter_rows(named=True), *train.iter_rows(named=True)]:
        s = row["start_s"]
        expected = azure.filter(pl.col("arrival_s").is_between(s, s + 20.0, closed="left")).height
        assert row["requests"] == expected
    # the load was calibrated as stated: the real windows' mean rate × speedup = 70 % of capacity
    real = runs.filter(pl.col("kind") == "real")
    real_rate = real["requests"].mean() / 20.0  # type: ignore[operator]
    assert result.capacity_rps is not None and result.capacity_rps > 0
    assert result.speedup == pytest.approx(0.7 * result.capacity_rps / real_rate)
    assert result.utilisation == pytest.approx(0.7)

    # sane numbers from every run
    assert (runs["completed"] == runs["requests"]).all() and (runs["failed"] == 0).all()
    assert (runs["p50_e2e_s"] > 0).all() and (runs["p50_e2e_s"] <= runs["p99_e2e_s"]).all()
    assert (runs["p99_ttft_s"] <= runs["p99_e2e_s"]).all() and (runs["p99_tpot_s"] > 0).all()
    assert runs["attainment"].is_between(0.0, 1.0).all() and (runs["goodput_rps"] >= 0).all()
    assert runs["cache_hit_rate"].is_null().all()  # the Azure trace has no hash_ids
    for row in runs.iter_rows(named=True):
        summary = json.loads(
            (out / "runs" / row["run_dir"].split("/")[-1] / "summary.json").read_text()
        )
        assert row["p99_e2e_s"] == pytest.approx(summary["full"]["e2e_s"]["p99"])
        assert row["attainment"] == pytest.approx(summary["goodput"]["attainment"])

    # the rule, recomputed by hand from the table for p99 E2E
    v = result.verdicts
    assert v.height == 2 * len(DOWNSTREAM_METRICS)
    for side in (SYNTH_SIDE, "poisson"):
        row = v.filter((pl.col("side") == side) & (pl.col("metric") == "p99_e2e_s")).row(
            0, named=True
        )
        r = real["p99_e2e_s"].to_list()
        c = sorted(runs.filter(pl.col("side") == side)["p99_e2e_s"].to_list())
        median, spread = (c[0] + c[1]) / 2, c[1] - c[0]
        real_spread = max(max(g) - min(g) for g in (held["p99_e2e_s"], train["p99_e2e_s"]))
        inside = min(r) / 1.25 <= median <= max(r) * 1.25
        assert row["median"] == pytest.approx(median) and row["spread"] == pytest.approx(spread)
        assert row["faithful"] == (inside and spread <= 1.5 * real_spread)
    assert v.filter(pl.col("metric") == "cache_hit_rate")["faithful"].is_null().all()

    # written: JSON, Parquet and the HTML report
    saved = json.loads((out / "downstream.json").read_text())
    assert saved["speedup"] == pytest.approx(result.speedup) and len(saved["runs"]) == 8
    assert pl.read_parquet(out / "runs.parquet").equals(runs)
    assert pl.read_parquet(out / "verdicts.parquet").height == v.height
    page = (out / "report.html").read_text()
    assert "Downstream fidelity over many seeds" in page and "vega" in page
    assert "burstlab faithful on" in str(result.summary())


def test_cache_hit_rate_reads_the_records_cached_prompt_tokens():
    """Σ cached ÷ Σ prompt tokens over successful requests that report a cache count, from the
    column replay records (`prompt_tokens_cached`); hand-checked: (0 + 512 + 256) / 3072."""
    from burstlab.replay.downstream import cache_hit_rate
    from burstlab.replay.records import RECORD_SCHEMA

    rows = {
        "ok": [True, True, True, False, True],
        "prompt_tokens_server": [1024, 1024, 1024, 1024, None],
        "prompt_tokens_client": [1000, 1000, 1000, 1000, 1000],
        "prompt_tokens_cached": [0, 512, 256, 1024, None],
    }
    schema = {k: RECORD_SCHEMA[k] for k in rows}
    assert cache_hit_rate(pl.DataFrame(rows, schema=schema)) == pytest.approx(768 / 3072)
    assert cache_hit_rate(pl.DataFrame(rows, schema=schema).drop("prompt_tokens_cached")) is None
