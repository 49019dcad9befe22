"""Huawei Cloud serverless traces (sir-lab data release, CC BY 4.0).

2025 release (EuroSys'25, "Serverless Cold Starts and Where to Find Them"), CSV per day,
regions in folders ``R1`` … ``R5``:
- cold-start events ``day,time,clusterName,funcName,userID,requestID,totalCost_cold_start,
  podAllocationCost,deployCodeCost,deployDependencyCost,schedulingCost,podID`` →
  ``cold_starts``. ``time`` is seconds since the start of day 0. ``podID`` such as
  ``pool24-600-512-0000577863`` encodes the pod's CPU limit (600 millicores) and memory limit
  (512 MB). ``region`` comes from an ``R1``…``R5`` folder in the file's path (null otherwise).
- per-request table (day 30) ``time_worker,time_frontend,requestID,…,totalCost_frontend,…`` →
  ``function_requests``; arrival = ``time_frontend`` (when the frontend logged it), duration =
  ``totalCost_frontend`` (end-to-end time seen by the frontend).
- per-minute wide tables ``day,time,<funcID>…`` (metric ``requests``) and the 2023 release's
  ``requests_minute/day_NN.csv`` → ``invocations``; an empty cell means no data and is dropped
  as such, zero minutes are not stored. ``minute`` = day × 1440 + (time mod 86400) / 60, which
  is right whether ``time`` counts from the day or from the trace start.

Functions are named by the release's funcID ``funcName---userID---poolName`` so the three
tables join; the 2023 tables only have a number per function.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from burstlab.traces.adapter import TIME_NS, Adapter, SourceFile, null_in, seconds_ns
from burstlab.traces.readers import LINE

REPO = "https://github.com/sir-lab/data-release"
OBS = "https://sir-dataset.obs.cn-east-3.myhuaweicloud.com/datasets/cold_start_dataset"
LICENCE = "CC-BY-4.0"
CITE_2025 = (
    "Joosen et al., Serverless Cold Starts and Where to Find Them, EuroSys 2025 (arXiv 2410.06145)"
)
CITE_2023 = (
    "Joosen et al., How Does It Function? Characterizing Long-term Trends in Production "
    "Serverless Workloads, ACM SoCC 2023 (arXiv 2312.10127)"
)
#: Caveats of every Huawei table, for dataset cards.
CAVEATS = (
    "The pod id encodes the pod's CPU (millicores) and memory (MB); those columns are "
    "decoded from it.",
)
_POOL = r"^(pool\d+)-(\d+)-(\d+)"


def _region(path: Path) -> str | None:
    for part in reversed(path.parts[:-1]):
        if len(part) >= 2 and part[0] in "Rr" and part[1:].isdigit():
            return part.upper()
    return None


def _func_id() -> pl.Expr:
    """funcName---userID---poolName, as the release's time-series tables name functions."""
    pool = pl.col("podID").str.extract(r"^(pool\d+-\d+-\d+)", 1)
    return pl.concat_str(
        [pl.col("funcName"), pl.col("userID"), pool], separator="---", ignore_nulls=False
    )


def _map_cold_starts(names: list[str], source_id: str, path: Path) -> list[pl.Expr]:
    return [
        pl.lit(source_id).alias("source"),
        pl.lit(_region(path), pl.String).alias("region"),
        seconds_ns("time", 10**9).alias(TIME_NS),
        _func_id().alias("function"),
        pl.col("userID").alias("user"),
        pl.col("podID")
        .str.extract(_POOL, 2)
        .cast(pl.Int32, strict=False)
        .alias("pod_cpu_millicores"),
        pl.col("podID").str.extract(_POOL, 3).cast(pl.Int32, strict=False).alias("pod_memory_mb"),
        pl.col("totalCost_cold_start").alias("total_s"),
        pl.col("podAllocationCost").alias("pod_allocation_s"),
        pl.col("deployCodeCost").alias("deploy_code_s"),
        pl.col("deployDependencyCost").alias("deploy_dependency_s"),
        pl.col("schedulingCost").alias("scheduling_s"),
    ]


COLD_STARTS = Adapter(
    family="huawei",
    table="cold_starts",
    format="csv",
    columns={
        "day": pl.Int64(),
        "time": pl.Float64(),
        "funcName": pl.String(),
        "userID": pl.String(),
        "totalCost_cold_start": pl.Float64(),
        "podAllocationCost": pl.Float64(),
        "deployCodeCost": pl.Float64(),
        "deployDependencyCost": pl.Float64(),
        "schedulingCost": pl.Float64(),
        "podID": pl.String(),
    },
    map_rows=_map_cold_starts,
    drop_when={
        "missing or non-numeric time": null_in(TIME_NS),
        "missing or non-numeric totalCost_cold_start": null_in("total_s"),
        "negative cold-start time": pl.col("total_s") < 0,
    },
    sources=(
        SourceFile(
            "huawei-2025-cold-starts",
            "R1.zip",
            url=f"{OBS}/cold_start/R1.zip",
            note="cold-start events with per-component costs, 5 regions x 31 days (unzip first)",
            patterns=("*cold_start*.csv",),
        ),
    ),
    licence=LICENCE,
    citation=CITE_2025,
    homepage=f"{REPO}/blob/main/README_data_release_2025.md",
    absolute_time=False,
    caveats=CAVEATS,
)


def _map_requests(names: list[str], source_id: str, path: Path) -> list[pl.Expr]:
    return [
        pl.lit(source_id).alias("source"),
        pl.col("userID").alias("app"),
        _func_id().alias("function"),
        seconds_ns("time_frontend", 10**9).alias(TIME_NS),
        pl.col("totalCost_frontend").alias("duration_s"),
    ]


REQUESTS = Adapter(
    family="huawei",
    table="function_requests",
    format="csv",
    columns={
        "time_frontend": pl.Float64(),
        "funcName": pl.String(),
        "userID": pl.String(),
        "podID": pl.String(),
        "totalCost_frontend": pl.Float64(),
    },
    map_rows=_map_requests,
    drop_when={
        "missing or non-numeric time_frontend": null_in(TIME_NS),
        "missing function": null_in("function"),
    },
    sources=(
        SourceFile(
            "huawei-2025-requests",
            "R5.zip",
            url=f"{OBS}/per_request/R5/R5.zip",
            note="every request of day 30, per region (unzip first)",
            patterns=("*per_request*.csv",),
        ),
    ),
    licence=LICENCE,
    citation=CITE_2025,
    homepage=f"{REPO}/blob/main/README_data_release_2025.md",
    absolute_time=False,
    caveats=CAVEATS,
)


def _minutes_long(raw: pl.LazyFrame, names: list[str]) -> pl.LazyFrame:
    functions = [c for c in names if c not in {LINE, "day", "time"}]
    return raw.unpivot(
        on=functions,
        index=[c for c in (LINE, "day", "time") if c in names],
        variable_name="function",
        value_name="value",
    )


def _map_minutes(names: list[str], source_id: str, path: Path) -> list[pl.Expr]:
    parts = pl.col("function").str.split("---")
    # in floats: a huge day must not wrap around int64 (the engine drops it as out of range)
    minute = pl.col("day").cast(pl.Float64) * 1440 + (pl.col("time") % 86400) // 60
    return [
        pl.lit(source_id).alias("source"),
        pl.when(parts.list.len() == 3).then(parts.list.get(1, null_on_oob=True)).alias("owner"),
        pl.col("function"),
        minute.cast(pl.Int64, strict=False).alias("minute"),
        pl.col("value").round().cast(pl.Int64, strict=False).alias("count"),
        pl.col("value").alias("_value"),
    ]


INVOCATIONS = Adapter(
    family="huawei",
    table="invocations",
    format="csv",
    columns={"day": pl.Int64(), "time": pl.Float64()},
    wide_type=pl.Float64(),
    reshape=_minutes_long,
    map_rows=_map_minutes,
    drop_when={
        "empty cell (no data)": null_in("_value"),
        "missing or non-numeric day/time": null_in("minute"),
        "non-integer or negative count": (pl.col("_value") != pl.col("_value").round())
        | (pl.col("_value") < 0),
        "zero invocations (absent row = 0)": pl.col("count") == 0,
    },
    sources=(
        SourceFile(
            "huawei-2025-requests-minute",
            "R2.zip",
            url=f"{OBS}/quantiles/R2.zip",
            note="requests per function per minute (quantiles/R*/requests/*.csv), 31 days",
        ),
        SourceFile(
            "huawei-2023-requests-minute",
            "requests_minute.zip",
            note="2023 public release: requests per function per minute, 26 days",
            patterns=("requests_minute*.csv",),
        ),
    ),
    licence=LICENCE,
    citation=f"{CITE_2025}; {CITE_2023}",
    homepage=f"{REPO}/blob/main/README.md",
    absolute_time=False,
    caveats=CAVEATS,
)

ADAPTERS = (COLD_STARTS, REQUESTS, INVOCATIONS)
