"""Multi-host replay through Ray (replay/ray_workers.py) without Ray: the clock-offset estimate
on hand-made timestamps, the address and placement checks, and the one-line error a run asking
for Ray gives where Ray is not installed. The runs themselves are in tests/ray (make test-ray).
"""

from __future__ import annotations

import importlib.util

import polars as pl
import pytest

from burstlab.errors import MissingExtraError, UsageError
from burstlab.replay.client import ClientOptions
from burstlab.replay.ray_workers import (
    RayInfo,
    RayWorker,
    check_address,
    check_placement,
    estimate_offset,
)
from burstlab.replay.run import ReplayConfig, check_config, replay


def test_offset_is_remote_minus_the_midpoint_of_the_shortest_round_trip():
    # the remote clock runs 2.5 s ahead; round trips of 30, 4 and 10 ms, the answers taken at
    # different points inside each round trip (asymmetric delays)
    samples = [
        (100.000, 102.520, 100.030),  # rtt 30 ms, answer 5 ms after the midpoint
        (101.000, 103.5015, 101.004),  # rtt 4 ms, answer 0.5 ms before the midpoint
        (102.000, 104.505, 102.010),  # rtt 10 ms, on the midpoint
    ]
    offset, rtt = estimate_offset(samples)
    assert rtt == pytest.approx(0.004)
    assert offset == pytest.approx(2.4995)
    assert abs(offset - 2.5) <= rtt / 2  # the error bound the estimate promises


def test_offset_of_one_round_trip_and_of_a_clock_behind():
    assert estimate_offset([(10.0, 9.0, 10.002)]) == (pytest.approx(-1.001), pytest.approx(0.002))
    # equal round trips: the first is kept
    assert estimate_offset([(0.0, 0.5, 1.0), (2.0, 2.0, 3.0)])[0] == pytest.approx(0.0)


def test_offset_refuses_no_samples_and_time_running_backwards():
    with pytest.raises(UsageError, match="at least one round trip"):
        estimate_offset([])
    with pytest.raises(UsageError, match="ends before it starts"):
        estimate_offset([(5.0, 5.0, 4.0)])


def test_addresses_and_placements():
    assert check_address("local") == "local"
    assert check_address(" AUTO ") == "auto"
    assert check_address("10.0.0.5:6379") == "10.0.0.5:6379"
    assert check_address("ray://head:10001") == "ray://head:10001"
    for bad in ("", "head", "head:port", ":6379", None, 5):
        with pytest.raises(UsageError, match="expected local, auto or a cluster address") as exc:
            check_address(bad)
        assert exc.value.param == "ray"
    assert check_placement("spread") == "SPREAD"
    assert check_placement("auto") == "auto"
    with pytest.raises(UsageError, match="expected one of auto, STRICT_SPREAD") as exc:
        check_placement("everywhere")
    assert exc.value.param == "placement"


def test_ray_info_is_plain_json():
    info = RayInfo(
        address="local", nodes=2, placement="STRICT_SPREAD", lead_s=2.0,
        workers=[RayWorker(0, "n0", "127.0.0.1", 0.001, 0.0004, 1.9)],
        lag_by_node={"n0": {"n": 3, "mean": 0.001, "p50": 0.001, "p99": 0.002, "max": 0.002}},
    )  # fmt: skip
    d = info.to_dict()
    assert d["workers"][0] == {
        "id": 0, "node_id": "n0", "node_ip": "127.0.0.1", "offset_s": 0.001, "rtt_s": 0.0004,
        "armed_s": 1.9,
    }  # fmt: skip
    assert d["lag_by_node"]["n0"]["n"] == 3


def test_a_bad_ray_address_is_refused_before_any_work():
    config = ReplayConfig(client=ClientOptions(url="http://127.0.0.1:9"), ray="nowhere")
    with pytest.raises(UsageError) as exc:
        check_config(config)
    assert exc.value.param == "ray"


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is not None
    and getattr(importlib.util.find_spec("ray"), "origin", None) is not None,
    reason="Ray is installed here",
)
def test_without_ray_a_ray_run_is_one_line_naming_the_extra(tmp_path):
    frame = pl.DataFrame(
        {"source": ["x"], "arrival_s": [0.0], "input_tokens": [8], "output_tokens": [2],
         "failed": [False]}
    )  # fmt: skip
    config = ReplayConfig(client=ClientOptions(url="http://127.0.0.1:9"), ray="local")
    with pytest.raises(MissingExtraError) as exc:
        replay(frame, config, tmp_path / "run")
    assert "pip install 'burstlab[ray]'" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "run").exists()  # refused before a run folder is made
