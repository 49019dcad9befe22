"""The client's own ceiling: how fast can this process send on schedule?

Every load generator has a rate above which it silently delivers less than asked or sends
late. `burstlab calibrate` measures it instead of assuming it: against the instant
server (its own process, never the bottleneck) it replays evenly spaced schedules at increasing
rates and reports, per rate, delivered/offered and the schedule lag percentiles. The ceiling is
the highest rate with p99 lag ≤ `lag_bound_s` and delivered/offered ≥ `min_delivered`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from burstlab.atomic import write_json
from burstlab.engines import instant_server
from burstlab.replay.client import ClientOptions
from burstlab.replay.run import ReplayConfig, replay
from burstlab.replay.schedule import ScheduleOptions
from burstlab.results import Result, Summary

DEFAULT_RATES: tuple[float, ...] = (250, 500, 1000, 1500, 2000, 3000, 4000)


@dataclass
class Calibration(Result):
    """Per-rate measurements (`rates`: offered and delivered requests/s, schedule lag in ms,
    errors) and the ceiling they imply (None when no rate passed)."""

    rates: pl.DataFrame
    ceiling_rps: float | None
    lag_bound_s: float
    min_delivered: float
    server: dict

    def table(self) -> pl.DataFrame:
        return self.rates

    def summary(self) -> Summary:
        ceiling = f"{self.ceiling_rps:g} req/s" if self.ceiling_rps else "below the lowest rate"
        title = (
            f"client ceiling: {ceiling} (p99 lag ≤ {self.lag_bound_s * 1000:g} ms and "
            f"delivered/offered ≥ {self.min_delivered:g})"
        )
        shown = ["offered_rps", "delivered_rps", "delivered_ratio", "lag_p50_ms", "lag_p99_ms",
                 "lag_max_ms", "errors"]  # fmt: skip
        return Summary(title).add("per offered rate", self.rates.select(shown))

    def to_dict(self) -> dict:
        return {
            "ceiling_rps": self.ceiling_rps,
            "lag_bound_s": self.lag_bound_s,
            "min_delivered": self.min_delivered,
            "server": self.server,
            "rates": self.rates.to_dicts(),
        }


def constant_rate_frame(
    n: int, rate: float, *, input_tokens: int, output_tokens: int
) -> pl.DataFrame:
    """A canonical requests table of `n` evenly spaced requests at `rate` per second."""
    return pl.DataFrame(
        {
            "source": ["calibration"] * n,
            "arrival_s": [i / rate for i in range(n)],
            "input_tokens": [input_tokens] * n,
            "output_tokens": [output_tokens] * n,
            "failed": [False] * n,
        }
    )


def measure_rate(
    url: str,
    rate: float,
    *,
    duration_s: float = 3.0,
    input_tokens: int = 32,
    output_tokens: int = 16,
    endpoint: str = "completions",
    out: Path | None = None,
) -> dict:
    """One calibration step: replay `rate` req/s for `duration_s` and report delivery and lag."""
    n = max(2, int(rate * duration_s))
    frame = constant_rate_frame(n, rate, input_tokens=input_tokens, output_tokens=output_tokens)
    config = ReplayConfig(
        client=ClientOptions(url=url, endpoint=endpoint),  # type: ignore[arg-type]
        schedule=ScheduleOptions(sessions=False),
        probe_tokenize=False,
        report=False,
        progress=False,
        source=f"calibration:{rate:g}rps",
    )
    with tempfile.TemporaryDirectory(prefix="burstlab-cal-") as tmp:
        run_dir = out or Path(tmp) / "run"
        s = replay(frame, config, run_dir).metrics
    c = s.counts
    send_rate = s.send_rate_rps or 0.0
    delivered = send_rate * (c.completed / c.scheduled) if c.scheduled else 0.0
    lag = s.schedule_lag_s
    return {
        "offered_rps": float(rate),
        "delivered_rps": delivered,
        "delivered_ratio": delivered / rate,
        "requests": c.scheduled,
        "completed": c.completed,
        "errors": c.failed,
        "lag_p50_ms": (lag.p50 or 0.0) * 1000,
        "lag_p99_ms": (lag.p99 or 0.0) * 1000,
        "lag_max_ms": (lag.max or 0.0) * 1000,
        "e2e_p50_ms": (s.full["e2e_s"].p50 or 0.0) * 1000,
    }


def warm_up(url: str, rate: float = 250.0, duration_s: float = 1.0) -> None:
    """One short replay whose numbers are discarded: the first run in a process pays one-time
    costs (imports, first connections, first calls through the SSE parser) that would otherwise
    land in the lowest rate step's p99 and hide the client's real ceiling."""
    measure_rate(url, rate, duration_s=duration_s)


def ceiling(table: pl.DataFrame, lag_bound_s: float, min_delivered: float) -> float | None:
    """Highest offered rate that met both bounds (rates above a failing one do not count)."""
    best = None
    for row in table.sort("offered_rps").iter_rows(named=True):
        if row["lag_p99_ms"] <= lag_bound_s * 1000 and row["delivered_ratio"] >= min_delivered:
            best = row["offered_rps"]
        else:
            break
    return best


def calibrate(
    rates: Sequence[float] = DEFAULT_RATES,
    *,
    duration_s: float = 3.0,
    output_tokens: int = 16,
    lag_bound_s: float = 0.002,
    min_delivered: float = 0.99,
    endpoint: str = "completions",
    on_step: Callable[[dict], object] | None = None,
    out: str | Path | None = None,
) -> Calibration:
    """Start the instant server, measure every rate in `rates` (requests/s, ascending) for
    `duration_s` seconds each, find the ceiling; with `out`, also write
    `<out>/calibration.json`."""

    rows = []
    with instant_server() as server:
        warm_up(server.base_url, min(rates))
        for rate in sorted(rates):
            row = measure_rate(
                server.base_url, rate, duration_s=duration_s, output_tokens=output_tokens,
                endpoint=endpoint,
            )  # fmt: skip
            rows.append(row)
            if on_step:
                on_step(row)
        info = {"base_url": server.base_url, "kind": "burstlab instant server", "workers": 1}
    table = pl.DataFrame(rows)
    result = Calibration(
        rates=table,
        ceiling_rps=ceiling(table, lag_bound_s, min_delivered),
        lag_bound_s=lag_bound_s,
        min_delivered=min_delivered,
        server=info,
    )
    if out is not None:
        write_json(Path(out) / "calibration.json", result.to_dict())
    return result
