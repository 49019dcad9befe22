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
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import polars as pl

from burstlab.errors import InputError, UsageError
from burstlab.replay.pacer import sleep_until
from burstlab.scalars import integer, number
from burstlab.schema import conform

#: With a clock other than the run clock (no kernel timer on it): the last stretch before a
#: deadline spent yielding to the loop, as event-loop timers have millisecond resolution.
SPIN_S = 0.0015
#: The longest prompt a schedule may ask for (tokens). Prompt texts are built in memory before
#: the run (about 5 bytes a token), so a corrupt length of 2**31 must be refused, not built.
MAX_PROMPT_TOKENS = 1 << 21
#: What to do with a request that does not fit the server's context (prompt + output tokens
#: more than it reports): send it as the trace has it, leave it out, or clip it to fit.
FitContext = Literal["send", "skip", "clip"]
FIT_CONTEXT = ("send", "skip", "clip")


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
    fit_context: a request whose prompt + output tokens exceed the context length the server
        reports (`apply_context`) is sent as it is ("send", the default: the run measures
        what the trace asks, and the records mark it `oversized`), left out ("skip") or clipped
        to fit ("clip": the prompt first, the output only when it alone does not fit).
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
    fit_context: FitContext = "send"

    def to_dict(self) -> dict:
        """The options as strict JSON values: an open window end (±inf) is null."""
        out = asdict(self)
        if self.window is not None:
            out["window"] = [v if math.isfinite(v) else None for v in self.window]
        return out

    def check(self) -> None:
        """UsageError naming the first option that cannot make a schedule."""
        if not self.speedup > 0 or math.isinf(self.speedup):
            raise UsageError(f"must be a finite number > 0, found {self.speedup}", param="speedup")
        if self.max_gap is not None and not (self.max_gap >= 0 and math.isfinite(self.max_gap)):
            raise UsageError(f"must be a finite number ≥ 0, found {self.max_gap}", param="max_gap")
        if self.limit is not None and self.limit < 0:
            raise UsageError(f"must be ≥ 0, found {self.limit}", param="limit")
        if self.window is not None:
            lo, hi = self.window
            if not hi > lo:
                raise UsageError(f"end must be after start, found {lo:g}:{hi:g}", param="window")
        for name in ("max_input_tokens", "max_output_tokens", "min_output_tokens"):
            value = getattr(self, name)
            if value is not None and not 1 <= value < 2**31:
                raise UsageError(f"must be a whole number of tokens ≥ 1, found {value}", param=name)
        if self.max_output_tokens is not None and self.min_output_tokens > self.max_output_tokens:
            raise UsageError(
                f"{self.min_output_tokens} is more than max_output_tokens {self.max_output_tokens}",
                param="min_output_tokens",
            )
        if self.fit_context not in FIT_CONTEXT:
            raise UsageError(
                f"expected one of {', '.join(FIT_CONTEXT)}, found {self.fit_context!r}",
                param="fit_context",
            )


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
    """Turn a canonical `requests` table into a Schedule (see ScheduleOptions).

    UsageError for options that cannot make a schedule; InputError for a table that cannot be
    read as requests, or whose arrival times or lengths are missing or not finite."""
    options.check()
    df = _read(requests)
    counts = {"rows_in": df.height}
    if options.window is not None:
        lo, hi = options.window
        df = df.filter((pl.col("arrival_s") >= lo) & (pl.col("arrival_s") < hi))
    counts["rows_in_window"] = df.height
    if options.skip_failed:
        failed = df.filter(pl.col("failed"))
        df = df.filter(~pl.col("failed"))
        counts["skipped_failed"] = failed.height
    df = df.sort("arrival_s", maintain_order=True)
    for name in ("input_tokens", "output_tokens"):
        nulls = int(df[name].is_null().sum())
        if nulls:
            raise InputError(
                None,
                f"{nulls} of {df.height} requests to send have no length (null)",
                field=name,
                expected="a whole number of tokens",
            )
    if options.limit is not None:
        counts["cut_by_limit"] = max(0, df.height - options.limit)
        df = df.head(options.limit)
    gap = pl.col("arrival_s").diff().fill_null(0.0) / options.speedup
    if options.max_gap is not None:
        gap = pl.min_horizontal(gap, pl.lit(float(options.max_gap)))
    df = df.with_columns(intended_s=gap.cum_sum())
    if df.height and not df["intended_s"].is_finite().all():
        raise InputError(
            None,
            "the gaps between arrival times are too large to schedule (they overflow to "
            "infinity); cap them (max_gap) or choose a window",
            field="arrival_s",
        )

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


def check_prompt_lengths(schedule: Schedule) -> None:
    """UsageError when a request asks for a prompt longer than MAX_PROMPT_TOKENS (its text would
    be built in memory): checked once the lengths are final (clipped to the context or not)."""
    t = schedule.table
    longest = integer(t["input_tokens"].max(), "input_tokens") if t.height else 0
    if longest > MAX_PROMPT_TOKENS:
        n = int((t["input_tokens"] > MAX_PROMPT_TOKENS).sum())
        raise UsageError(
            f"{n} scheduled request(s) ask for prompts of up to {longest:,} tokens, more than "
            f"the {MAX_PROMPT_TOKENS:,} a replay builds; clip them lower",
            param="max_input_tokens",
        )


def _read(requests: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The canonical requests table, collected; InputError (one line) when polars cannot read
    or cast it, or when a row has no finite arrival time."""
    try:
        df = conform(requests, "requests").collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(None, f"cannot be read as a requests table: {first}") from None
    bad = df.height - int(df["arrival_s"].is_finite().sum())
    if bad:
        raise InputError(
            None,
            f"{bad} of {df.height} rows have no finite arrival time (null, NaN or infinite)",
            field="arrival_s",
            expected="seconds",
        )
    return df


def apply_context(
    schedule: Schedule, context_tokens: int | None
) -> tuple[Schedule, dict[str, int]]:
    """Mark (and, by `options.fit_context`, skip or clip) the requests whose prompt + output
    tokens exceed `context_tokens`, the context one request may fill on the server.

    The table gains a boolean column `oversized` — does the request as it will be sent need
    more than the context (null when the context is unknown) — and the returned counts say
    how many were oversized in the schedule (`oversized`), left out (`skipped`) and clipped
    (`clipped`). Skipped requests keep their req_ids out of the table (ids stay those of the
    schedule); a later session turn of a skipped request is then sent on its own schedule.
    """
    t = schedule.table
    if context_tokens is None:
        table = t.with_columns(oversized=pl.lit(None, pl.Boolean))
        return replace(schedule, table=table), {"oversized": 0, "skipped": 0, "clipped": 0}
    need = pl.col("input_tokens").cast(pl.Int64) + pl.col("output_tokens").cast(pl.Int64)
    over = t.select(need > context_tokens).to_series()
    n_over = int(over.sum())
    mode = schedule.options.fit_context
    counts = {"oversized": n_over, "skipped": 0, "clipped": 0}
    if mode == "skip" and n_over:
        t = t.filter(~over)
        counts["skipped"] = n_over
    elif mode == "clip" and n_over:
        out = pl.min_horizontal(pl.col("output_tokens"), pl.lit(max(1, context_tokens - 1)))
        t = t.with_columns(output_tokens=out.cast(pl.Int32))
        room = pl.lit(context_tokens) - pl.col("output_tokens")
        t = t.with_columns(
            input_tokens=pl.min_horizontal(pl.col("input_tokens"), room).clip(1).cast(pl.Int32)
        )
        counts["clipped"] = n_over
    oversized = (
        pl.col("input_tokens").cast(pl.Int64) + pl.col("output_tokens").cast(pl.Int64)
        > context_tokens
    )
    table = t.with_columns(oversized=oversized)
    new_counts = {**schedule.counts, "scheduled": table.height}
    if counts["skipped"]:
        new_counts["skipped_oversized"] = counts["skipped"]
    if counts["clipped"]:
        new_counts["clipped_to_context"] = counts["clipped"]
    return replace(schedule, table=table, counts=new_counts), counts


def _sessions(df: pl.DataFrame, options: ScheduleOptions) -> pl.DataFrame:
    """Add turn / follows / think_s: within a session, turn k waits for turn k-1's end.

    Think time = the trace gap between the two turns' arrivals minus the previous turn's own
    latency when the source records it (BurstGPT), never below 0, scaled like every duration.
    """
    by = pl.col("session_id")
    has = by.is_not_null()
    prev_arrival = pl.col("arrival_s").shift(1).over("session_id")
    # a latency the source does not know (null, NaN, ±inf) counts as none
    latency = pl.when(pl.col("source_latency_s").is_finite()).then(pl.col("source_latency_s"))
    prev_latency = latency.shift(1).over("session_id").fill_null(0.0)
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

    On the run clock this waits on a kernel timer (`pacer.sleep_until`: a timerfd on Linux, so
    no spinning); with another clock it sleeps on the loop's timer until SPIN_S before the
    deadline, then yields to the loop (`sleep(0)`) until the deadline has passed.
    """
    if clock is now:
        await sleep_until(deadline)
        return
    delay = deadline - clock()
    if delay > SPIN_S:
        await asyncio.sleep(delay - SPIN_S)
    while clock() < deadline:
        await asyncio.sleep(0)
