"""The replay schedule: every request's intended send time, fixed before the run starts.

Open-loop replay means the trace, not the server, decides when a request is sent. So the whole
schedule is computed up front as a table (`intended_s`, seconds on the run clock, 0 = run start)
and the client only has to meet deadlines. The one exception is a conversation: turn k of a
session is sent its think time after turn k-1's response ends, which is only known during the
run; such rows carry `follows` (the request they wait for) and `think_s`, and their
`intended_s` here is only the plan — the record holds the real one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import polars as pl

from burstlab.errors import UsageError
from burstlab.scalars import number
from burstlab.schema import conform

#: Last stretch before a deadline that is spent yielding to the loop instead of sleeping:
#: event-loop timers (libuv) have millisecond resolution, so a plain sleep would be late.
SPIN_S = 0.0015


@dataclass(frozen=True)
class ScheduleOptions:
    """How a trace becomes a schedule. Times in seconds.

    window: (start, end) in trace seconds (`arrival_s`); None keeps everything.
    speedup: play the trace this many times faster: every gap and think time is divided by
        it (10 = ten times faster; 1 = real time).
    max_gap: cap every idle gap between consecutive sends at this many run seconds (after
        scaling) so a quiet stretch of the trace does not stall a test.
    limit: keep at most this many requests (the earliest ones).
    sessions: send a conversation's later turns think time after the previous response ends.
    max_input_tokens / max_output_tokens: clip lengths to what the target's context allows;
        min_output_tokens raises tiny outputs (1 token has no TPOT).
    skip_failed: leave out rows the source marks as failed (they have no output length).
    """

    window: tuple[float, float] | None = None
    speedup: float = 1.0
    max_gap: float | None = None
    limit: int | None = None
    sessions: bool = True
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    min_output_tokens: int = 1
    skip_failed: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Schedule:
    """The schedule table plus the counts that reconcile it with the input trace.

    `table` columns: req_id, intended_s, trace_arrival_s, input_tokens, output_tokens,
    trace_input_tokens, trace_output_tokens, session_id, turn, follows, think_s, hash_ids.
    """

    table: pl.DataFrame
    options: ScheduleOptions
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.table.height

    @property
    def span_s(self) -> float:
        """Planned duration from the first to the last intended send (run seconds)."""
        return number(self.table["intended_s"].max() or 0.0, "intended_s") if self.n else 0.0


def build_schedule(requests: pl.DataFrame | pl.LazyFrame, options: ScheduleOptions) -> Schedule:
    """Turn a canonical `requests` table into a Schedule (see ScheduleOptions)."""
    if not options.speedup > 0:
        raise UsageError(f"must be > 0, found {options.speedup}", param="speedup")
    df = conform(requests, "requests").collect()
    counts = {"rows_in": df.height}
    if options.window is not None:
        lo, hi = options.window
        if not hi > lo:
            raise UsageError(f"end must be after start, found {lo:g}:{hi:g}", param="window")
        df = df.filter((pl.col("arrival_s") >= lo) & (pl.col("arrival_s") < hi))
    counts["rows_in_window"] = df.height
    if options.skip_failed:
        failed = df.filter(pl.col("failed"))
        df = df.filter(~pl.col("failed"))
        counts["skipped_failed"] = failed.height
    df = df.sort("arrival_s", maintain_order=True)
    if options.limit is not None:
        counts["cut_by_limit"] = max(0, df.height - options.limit)
        df = df.head(options.limit)
    gap = pl.col("arrival_s").diff().fill_null(0.0) / options.speedup
    if options.max_gap is not None:
        gap = pl.min_horizontal(gap, pl.lit(float(options.max_gap)))
    df = df.with_columns(intended_s=gap.cum_sum())

    out_cap = options.max_output_tokens
    in_cap = options.max_input_tokens
    df = df.with_columns(
        trace_input_tokens=pl.col("input_tokens"),
        trace_output_tokens=pl.col("output_tokens"),
        input_tokens=pl.col("input_tokens").clip(1, in_cap).cast(pl.Int32),
        output_tokens=pl.col("output_tokens")
        .clip(options.min_output_tokens, out_cap)
        .cast(pl.Int32),
    ).with_row_index("req_id")
    df = df.with_columns(pl.col("req_id").cast(pl.Int64))
    df = _sessions(df, options)
    table = df.select(
        "req_id",
        "intended_s",
        pl.col("arrival_s").alias("trace_arrival_s"),
        "input_tokens",
        "output_tokens",
        "trace_input_tokens",
        "trace_output_tokens",
        "session_id",
        "turn",
        "follows",
        "think_s",
        "hash_ids",
    )
    counts["scheduled"] = table.height
    counts["dynamic"] = int(table["follows"].is_not_null().sum())
    return Schedule(table=table, options=options, counts=counts)


def _sessions(df: pl.DataFrame, options: ScheduleOptions) -> pl.DataFrame:
    """Add turn / follows / think_s: within a session, turn k waits for turn k-1's end.

    Think time = the trace gap between the two turns' arrivals minus the previous turn's own
    latency when the source records it (BurstGPT), never below 0, scaled like every duration.
    """
    by = pl.col("session_id")
    has = by.is_not_null()
    prev_arrival = pl.col("arrival_s").shift(1).over("session_id")
    prev_latency = pl.col("source_latency_s").shift(1).over("session_id").fill_null(0.0)
    df = df.with_columns(
        turn=pl.when(has).then(pl.int_range(pl.len()).over("session_id")).cast(pl.Int32),
        follows=pl.when(has).then(pl.col("req_id").shift(1).over("session_id")),
        think_s=pl.when(has).then(
            ((pl.col("arrival_s") - prev_arrival - prev_latency).clip(0.0, None)) / options.speedup
        ),
    )
    if not options.sessions:
        df = df.with_columns(follows=pl.lit(None, pl.Int64), think_s=pl.lit(None, pl.Float64))
    if options.max_gap is not None:
        df = df.with_columns(think_s=pl.col("think_s").clip(None, float(options.max_gap)))
    return df


def now() -> float:
    """The run clock's time source: monotonic, sub-microsecond resolution (seconds)."""
    return time.perf_counter()


async def wait_until(deadline: float, clock: Callable[[], float] = now) -> None:
    """Return at `deadline` (absolute `clock()` seconds), never relative to the last wake-up.

    Sleeps on the loop's timer until SPIN_S before the deadline, then yields to the loop
    (`sleep(0)`, so responses keep being read) until the deadline has passed.
    """
    delay = deadline - clock()
    if delay > SPIN_S:
        await asyncio.sleep(delay - SPIN_S)
    while clock() < deadline:
        await asyncio.sleep(0)
