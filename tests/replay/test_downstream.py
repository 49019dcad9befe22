"""Downstream fidelity: the same real llama.cpp server under two loads, compared."""

from __future__ import annotations

import json

import polars as pl
import pytest

from burstlab.replay.client import ClientOptions
from burstlab.replay.downstream import compare_loads
from burstlab.replay.goodput import parse_slo
from burstlab.replay.run import ReplayConfig
from burstlab.replay.schedule import ScheduleOptions


def load(n: int, rate: float) -> pl.DataFrame:
    """Fixture loads (not trace rows): n requests of 64 prompt / 24 output tokens at `rate`/s."""
    return pl.DataFrame(
        {
            "source": ["fixture"] * n,
            "arrival_s": [i / rate for i in range(n)],
            "input_tokens": [64] * n,
            "output_tokens": [24] * n,
            "failed": [False] * n,
        }
    )


@pytest.mark.slow
def test_a_burstier_load_shows_up_downstream(engine, tmp_path):
    config = ReplayConfig(
        client=ClientOptions(url=engine.base_url),
        schedule=ScheduleOptions(sessions=False),
        model=engine.model,
        slo=parse_slo("e2e=10"),
        progress=False,
    )
    # 40 requests spread over 4 s, then the same 40 all at once: 4 slots must queue the burst
    result = compare_loads(load(40, rate=10.0), load(40, rate=2000.0), config, tmp_path)

    assert result.loads["load"].to_list() == ["real", "synthetic"]
    assert result.loads["completed"].to_list() == [40, 40]
    for name, row in zip(("real", "synthetic"), result.loads.iter_rows(named=True), strict=True):
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert row["p99_e2e_s"] == pytest.approx(summary["full"]["e2e_s"]["p99"])
        assert row["attainment"] == pytest.approx(summary["goodput"]["attainment"])
    real, synth = result.loads.iter_rows(named=True)
    assert result.ratios["p99_e2e_s"] == pytest.approx(synth["p99_e2e_s"] / real["p99_e2e_s"])
    # queueing behind 4 slots, invisible to a rate metric; on the median, which one stall of a
    # loaded machine cannot move (the p99 of 40 requests is their slowest: one stall flips it)
    assert result.ratios["p50_e2e_s"] > 2.0
    assert result.ratios["attainment"] == pytest.approx(1.0)  # both well inside a 10 s E2E SLO
