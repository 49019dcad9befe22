"""Schedule math: window, scaling, gap cap, limit, sessions; the deadline wait's precision."""

from __future__ import annotations

import asyncio

import polars as pl
import pytest

from burstlab.errors import UsageError
from burstlab.replay.schedule import ScheduleOptions, build_schedule, now, wait_until


def frame(arrivals, **cols):
    n = len(arrivals)
    data = {
        "source": ["fixture"] * n,
        "arrival_s": arrivals,
        "input_tokens": cols.pop("input_tokens", [100] * n),
        "output_tokens": cols.pop("output_tokens", [10] * n),
        "failed": cols.pop("failed", [False] * n),
    }
    data.update(cols)
    return pl.DataFrame(data)


def test_window_shift_scale_and_limit():
    s = build_schedule(
        frame([0.0, 5.0, 10.0, 12.0, 20.0, 30.0]),
        ScheduleOptions(window=(5.0, 25.0), speedup=4.0, limit=3),
    )
    # kept 5, 10, 12 (limit 3 of the 4 in the window); shifted to 0; × 0.5 / 2 = × 0.25
    assert s.table["intended_s"].to_list() == [0.0, 1.25, 1.75]
    assert s.table["trace_arrival_s"].to_list() == [5.0, 10.0, 12.0]
    assert s.counts == {
        "rows_in": 6, "rows_in_window": 4, "skipped_failed": 0, "cut_by_limit": 1,
        "scheduled": 3, "dynamic": 0,
    }  # fmt: skip


def test_max_gap_caps_idle_gaps_after_scaling():
    s = build_schedule(frame([0.0, 100.0, 101.0, 300.0]), ScheduleOptions(speedup=10, max_gap=5.0))
    # scaled gaps 10, 0.1, 19.9 → capped at 5
    assert s.table["intended_s"].to_list() == pytest.approx([0.0, 5.0, 5.1, 10.1])
    assert s.span_s == pytest.approx(10.1)


def test_failed_rows_are_skipped_and_counted_lengths_clipped():
    s = build_schedule(
        frame([0.0, 1.0, 2.0], failed=[False, True, False], input_tokens=[5000, 10, 10],
              output_tokens=[900, 0, 0]),
        ScheduleOptions(max_input_tokens=1000, max_output_tokens=64, min_output_tokens=2),
    )  # fmt: skip
    assert s.counts["skipped_failed"] == 1
    assert s.table["input_tokens"].to_list() == [1000, 10]
    assert s.table["output_tokens"].to_list() == [64, 2]
    assert s.table["trace_input_tokens"].to_list() == [5000, 10]


def test_sessions_follow_previous_turn_with_think_time():
    s = build_schedule(
        frame([0.0, 1.0, 10.0, 12.0], session_id=["a", "b", "a", "a"],
              source_latency_s=[3.0, None, 1.5, None]),
        ScheduleOptions(speedup=2),
    )  # fmt: skip
    t = s.table
    assert t["turn"].to_list() == [0, 0, 1, 2]
    assert t["follows"].to_list() == [None, None, 0, 2]
    # turn 1: (10 - 0 - 3.0 latency) × 0.5 = 3.5; turn 2: (12 - 10 - 1.5) × 0.5 = 0.25
    assert t["think_s"].to_list() == pytest.approx([None, None, 3.5, 0.25], nan_ok=True)
    assert s.counts["dynamic"] == 2
    flat = build_schedule(frame([0.0, 1.0], session_id=["a", "a"]), ScheduleOptions(sessions=False))
    assert flat.table["follows"].to_list() == [None, None]


def test_bad_options_raise_clear_errors():
    with pytest.raises(UsageError, match="speedup: must be a finite number > 0"):
        build_schedule(frame([0.0]), ScheduleOptions(speedup=0))
    with pytest.raises(UsageError, match="window: end must be after start"):
        build_schedule(frame([0.0]), ScheduleOptions(window=(5, 1)))


def test_wait_until_hits_absolute_deadlines():
    async def go():
        t0 = now()
        lags = []
        for k in range(1, 41):
            deadline = t0 + k * 0.005
            await wait_until(deadline)
            lags.append(now() - deadline)
        return lags

    lags = asyncio.run(go())
    assert min(lags) >= 0.0  # never early
    assert sorted(lags)[len(lags) // 2] < 0.001  # typically well under a millisecond late
