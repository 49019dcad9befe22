"""Serverless workloads: per-function invocations, and cold starts under a keep-alive policy.

Small on purpose. Each function is an arrival process (a WorkloadSpec's arrivals, fitted per
function); invocations are aggregated per minute into the canonical `invocations` table (Azure
Functions 2019 shape). Cold starts are *derived*, not sampled: with a fixed keep-alive policy
an invocation is cold when its function has been idle longer than the keep-alive (or has never
run), the rule of the "Serverless in the Wild" simulator. One warm instance per function; the
time an instance is busy is ignored (invocations are short next to keep-alives of minutes).

`cold_start_stats` summarises cold starts the way the Huawei EuroSys'25 paper does (count,
rate, inter-arrival mean/std/CV between cold starts), so a generated table can be set beside
fitted or published statistics. Times are seconds; `minute` counts from the workload start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

from burstlab.schema import conform
from burstlab.spec import FamilyFit, WorkloadSpec
from burstlab.synth.arrivals import arrival_times


class Moments(Protocol):
    """A fitted duration's mean and standard deviation (seconds)."""

    @property
    def mean_s(self) -> float: ...

    @property
    def sd_s(self) -> float: ...


class ColdStartSummary(Protocol):
    """What `compare_cold_starts` reads of a cold-start fit: the moments of the cold-start
    time and of the gaps between cold starts (None when not fitted). The fitting stage's
    `ColdStartFit` (`burstlab.fitting.fit_cold_starts`) is one; synth does not import it."""

    @property
    def total(self) -> Moments: ...

    @property
    def gaps(self) -> Moments | None: ...


def function_arrivals(
    specs: Mapping[str, WorkloadSpec], duration_s: float, seed: int = 0, rate_scale: float = 1.0
) -> pl.DataFrame:
    """Invocation times of every function on [0, duration_s): columns function, arrival_s.

    Each function gets its own seeded stream (SeedSequence.spawn), so adding a function does
    not change the others' arrivals."""
    children = np.random.SeedSequence(seed).spawn(len(specs))
    parts = []
    for (name, spec), child in zip(specs.items(), children, strict=True):
        t = arrival_times(spec.arrivals, np.random.default_rng(child), duration_s, rate_scale)
        parts.append(
            pl.DataFrame({"function": pl.repeat(name, t.size, eager=True), "arrival_s": t})
        )
    return (
        pl.concat(parts).sort("arrival_s")
        if parts
        else pl.DataFrame(schema={"function": pl.String, "arrival_s": pl.Float64})
    )


def invocations_table(
    arrivals: pl.DataFrame, source: str, trigger: str | None = None
) -> pl.DataFrame:
    """Per-function per-minute counts in the canonical `invocations` schema."""
    counts = (
        arrivals.with_columns((pl.col("arrival_s") // 60).cast(pl.Int32).alias("minute"))
        .group_by("function", "minute")
        .len("count")
        .sort("function", "minute")
        .with_columns(pl.lit(source).alias("source"), pl.lit(trigger).alias("trigger"))
    )
    return conform(counts, "invocations").collect()


def spread_minutes(invocations: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """Per-invocation times from per-minute counts, uniform inside each minute (the only
    assumption the per-minute Azure 2019 tables allow): columns function, arrival_s."""
    rng = np.random.default_rng(seed)
    counts = invocations["count"].to_numpy().astype(np.int64)
    minute = np.repeat(invocations["minute"].to_numpy().astype(np.float64), counts)
    fn = np.repeat(invocations["function"].to_numpy(), counts)
    t = (minute + rng.random(minute.size)) * 60.0
    return pl.DataFrame({"function": fn, "arrival_s": t}).sort("function", "arrival_s")


def cold_starts(
    arrivals: pl.DataFrame,
    keep_alive_s: float,
    *,
    source: str,
    cold_start_time: FamilyFit | None = None,
    seed: int = 0,
) -> pl.DataFrame:
    """Cold starts in the canonical `cold_starts` schema under a fixed keep-alive policy.

    An invocation is cold when it is its function's first, or comes more than `keep_alive_s`
    seconds after the function's previous invocation. `total_s` (the cold-start time) is
    drawn from `cold_start_time` when given (e.g. a fitted LogNormal), else NaN."""
    f = arrivals.sort("function", "arrival_s").with_columns(
        pl.col("arrival_s").diff().over("function").alias("_gap")
    )
    cold = f.filter(pl.col("_gap").is_null() | (pl.col("_gap") > keep_alive_s)).sort("arrival_s")
    rng = np.random.default_rng(seed)
    total = (
        cold_start_time.sample(rng, cold.height)
        if cold_start_time is not None
        else np.full(cold.height, np.nan)  # required column: NaN marks "not modelled"
    )
    out = cold.select(pl.lit(source).alias("source"), "arrival_s", "function").with_columns(
        pl.Series("total_s", total, dtype=pl.Float64)
    )
    return conform(out, "cold_starts").collect()


@dataclass(frozen=True)
class ColdStartStats:
    """Summary of a cold-start table: counts, rate, and the gaps between cold starts (s)."""

    invocations: int
    cold_starts: int
    cold_share: float
    rate_per_s: float
    iat_mean_s: float
    iat_std_s: float

    @property
    def iat_cv(self) -> float:
        return self.iat_std_s / self.iat_mean_s if self.iat_mean_s > 0 else float("nan")


def cold_start_stats(cold: pl.DataFrame, invocations: int, duration_s: float) -> ColdStartStats:
    """Cold-start statistics comparable with the Huawei paper's (gaps over all functions)."""
    gaps = np.diff(np.sort(cold["arrival_s"].to_numpy()))
    return ColdStartStats(
        invocations,
        cold.height,
        cold.height / invocations if invocations else float("nan"),
        cold.height / duration_s,
        float(gaps.mean()) if gaps.size else float("nan"),
        float(gaps.std()) if gaps.size else float("nan"),
    )


def compare_cold_starts(cold: pl.DataFrame, fitted: ColdStartSummary) -> pl.DataFrame:
    """Generated cold starts beside fitted ones (e.g. `burstlab.fitting.fit_cold_starts`):
    per quantity (cold-start time, gap between cold starts) the mean and s.d. in seconds.

    The keep-alive policy decides *when* cold starts happen, so the gap rows are the test of
    a policy; the cold-start time is whatever distribution was passed to `cold_starts`."""
    gaps = np.diff(np.sort(cold["arrival_s"].to_numpy()))
    total = cold["total_s"].drop_nans().to_numpy()
    rows = []
    for quantity, generated, fit in (
        ("cold_start", total, fitted.total),
        ("gap", gaps, fitted.gaps),
    ):
        rows.append(
            {
                "quantity": quantity,
                "generated_mean_s": float(generated.mean()) if generated.size else None,
                "generated_sd_s": float(generated.std(ddof=1)) if generated.size > 1 else None,
                "fitted_mean_s": fit.mean_s if fit is not None else None,
                "fitted_sd_s": fit.sd_s if fit is not None else None,
            }
        )
    return pl.DataFrame(rows)
