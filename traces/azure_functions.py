"""Azure Functions traces: 2019 (Serverless in the Wild, ATC'20) and 2021 (SOSP'21).

2019 ships as one ``.tar.xz`` of per-day CSVs (``d01`` … ``d14``); the day comes from the
file name. Three tables:
- ``invocations_per_function_md.anon.dNN.csv``: ``HashOwner,HashApp,HashFunction,Trigger,1..1440``
  (invocations per minute) → the long canonical ``invocations`` table, ``minute`` counted from
  the start of day 1. Minutes with 0 invocations are not stored (absent = 0) and are counted
  under the drop reason ``zero invocations (absent row = 0)``, so counts still reconcile.
- ``function_durations_percentiles.anon.dNN.csv`` → the auxiliary ``function_durations``
  table (one row per function per day; milliseconds converted to seconds).
- ``app_memory_percentiles.anon.dNN.csv`` (days 1–12 only) → the auxiliary ``app_memory``
  table (one row per app per day, MB).
They are not requests, so they are kept as their own tables (with catalog views) rather than
forced into a canonical one; they join with ``invocations`` on owner/app/function.

2021: ``app,func,end_timestamp,duration`` (seconds since the trace start). The log time is the
END of the invocation, so ``arrival = end_timestamp − duration``. It ships as a RAR archive;
burstlab extracts it with ``bsdtar``, ``unrar``, ``7z`` or ``unar`` when one is installed.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from burstlab.errors import InputError
from burstlab.traces.adapter import (
    TIME_NS,
    Adapter,
    SourceFile,
    difference_ns,
    null_in,
    seconds_ns,
)
from burstlab.traces.readers import LINE

REPO = "https://github.com/Azure/AzurePublicDataset"
LICENCE = "CC-BY-4.0 (data); MIT (code in the repository)"
CITE_2019 = (
    "Shahrad et al., Serverless in the Wild: Characterizing and Optimizing the Serverless "
    "Workload at a Large Cloud Provider, USENIX ATC 2020"
)
CITE_2021 = (
    "Zhang et al., Faster and Cheaper Serverless Computing on Harvested Resources, SOSP 2021"
)
#: Caveats of every 2019 table (invocations, durations, memory), for dataset cards.
CAVEATS_2019 = (
    "Only per-minute invocation counts per function: no per-request times.",
    "Per-day files: a function may be missing from days it was not invoked.",
)
CAVEATS_2021 = (
    "The trace gives each invocation's END time and duration; arrival = end − duration, "
    "so arrival times inherit any error of the logged duration.",
)
TAR_2019 = SourceFile(
    "azure-functions-2019",
    "azurefunctions-dataset2019.tar.xz",
    url=(
        "https://azurepublicdatasettraces.blob.core.windows.net/azurepublicdatasetv2/"
        "azurefunctions_dataset2019/azurefunctions-dataset2019.tar.xz"
    ),
    note="invocations per function per minute, 14 days of July 2019 (the .tar.xz or its CSVs)",
    patterns=("invocations_per_function_md.anon.d*.csv",),
)
_DAY = re.compile(r"\.d(\d+)\.csv", re.IGNORECASE)


def _day(path: Path) -> int:
    """The day number (1-based) a 2019 file name carries (``….d07.csv`` → 7)."""
    found = _DAY.search(path.name)
    if found is None:
        raise InputError(path, "cannot read the day from the file name", expected="….dNN.csv")
    return int(found.group(1))


# ---- 2019 invocations: wide minute columns -> long rows ----

_ID_COLUMNS = ("HashOwner", "HashApp", "HashFunction", "Trigger")


def _minutes_long(raw: pl.LazyFrame, names: list[str]) -> pl.LazyFrame:
    minute_cols = [c for c in names if c.isdigit()]
    return raw.unpivot(
        on=minute_cols,
        index=[c for c in (LINE, *_ID_COLUMNS) if c in names],
        variable_name="minute_of_day",
        value_name="count",
    )


def _map_invocations(names: list[str], source_id: str, path: Path) -> list[pl.Expr]:
    first_minute = (_day(path) - 1) * 1440
    column = pl.col("minute_of_day").cast(pl.Int64, strict=False)  # "1" … "1440"
    return [
        pl.lit(source_id).alias("source"),
        pl.col("HashOwner").alias("owner"),
        pl.col("HashApp").alias("app"),
        pl.col("HashFunction").alias("function"),
        pl.col("Trigger").alias("trigger"),
        pl.when(column.is_between(1, 1440)).then(column - 1 + first_minute).alias("minute"),
        pl.col("count"),
    ]


INVOCATIONS_2019 = Adapter(
    family="azure-functions",
    table="invocations",
    format="csv",
    columns={c: pl.String() for c in _ID_COLUMNS},
    wide_type=pl.Int64(),
    reshape=_minutes_long,
    map_rows=_map_invocations,
    drop_when={
        "missing function id": null_in("function"),
        "minute column outside 1..1440": null_in("minute"),
        "missing or non-integer count": null_in("count"),
        "negative count": pl.col("count") < 0,
        "zero invocations (absent row = 0)": pl.col("count") == 0,
    },
    sources=(TAR_2019,),
    licence=LICENCE,
    citation=CITE_2019,
    homepage=f"{REPO}/blob/master/AzureFunctionsDataset2019.md",
    absolute_time=False,
    caveats=CAVEATS_2019,
)

# ---- 2019 duration and memory percentiles: auxiliary per-day tables ----

_PCTS = (0, 1, 25, 50, 75, 99, 100)
FUNCTION_DURATIONS: dict[str, pl.DataType] = {
    "source": pl.String(),
    "day": pl.Int16(),
    "owner": pl.String(),
    "app": pl.String(),
    "function": pl.String(),
    "count": pl.Int64(),  # executions the average is over
    "average_s": pl.Float64(),
    "minimum_s": pl.Float64(),
    "maximum_s": pl.Float64(),
    # weighted percentiles of 30-second AVERAGES, not of single executions (see the docs page)
    **{f"p{p}_s": pl.Float64() for p in _PCTS},
}


def _map_durations(names: list[str], source_id: str, path: Path) -> list[pl.Expr]:
    ms = {"average_s": "Average", "minimum_s": "Minimum", "maximum_s": "Maximum"}
    ms |= {f"p{p}_s": f"percentile_Average_{p}" for p in _PCTS}
    return [
        pl.lit(source_id).alias("source"),
        pl.lit(_day(path)).alias("day"),
        pl.col("HashOwner").alias("owner"),
        pl.col("HashApp").alias("app"),
        pl.col("HashFunction").alias("function"),
        pl.col("Count").alias("count"),
        *[(pl.col(raw) / 1000.0).alias(out) for out, raw in ms.items()],
    ]


DURATIONS_2019 = Adapter(
    family="azure-functions",
    table="function_durations",
    schema=FUNCTION_DURATIONS,
    format="csv",
    columns={
        "HashOwner": pl.String(),
        "HashApp": pl.String(),
        "HashFunction": pl.String(),
        "Average": pl.Float64(),
        "Count": pl.Int64(),
        "Minimum": pl.Float64(),
        "Maximum": pl.Float64(),
        **{f"percentile_Average_{p}": pl.Float64() for p in _PCTS},
    },
    map_rows=_map_durations,
    drop_when={
        "missing function id": null_in("function"),
        "missing or non-numeric average": null_in("average_s"),
    },
    sources=(
        SourceFile(
            "azure-functions-2019-durations",
            "function_durations_percentiles.anon.d01.csv",
            note="per function per day: execution-time average, min, max, percentiles",
            patterns=("function_durations_percentiles.anon.d*.csv",),
        ),
    ),
    licence=LICENCE,
    citation=CITE_2019,
    homepage=f"{REPO}/blob/master/AzureFunctionsDataset2019.md",
    absolute_time=False,
    caveats=CAVEATS_2019,
)

_MEM_PCTS = (1, 5, 25, 50, 75, 95, 99, 100)
APP_MEMORY: dict[str, pl.DataType] = {
    "source": pl.String(),
    "day": pl.Int16(),
    "owner": pl.String(),
    "app": pl.String(),
    "sample_count": pl.Int64(),
    "average_mb": pl.Float64(),  # allocated (committed) memory, not resident
    **{f"p{p}_mb": pl.Float64() for p in _MEM_PCTS},
}


def _map_memory(names: list[str], source_id: str, path: Path) -> list[pl.Expr]:
    return [
        pl.lit(source_id).alias("source"),
        pl.lit(_day(path)).alias("day"),
        pl.col("HashOwner").alias("owner"),
        pl.col("HashApp").alias("app"),
        pl.col("SampleCount").alias("sample_count"),
        pl.col("AverageAllocatedMb").alias("average_mb"),
        *[pl.col(f"AverageAllocatedMb_pct{p}").alias(f"p{p}_mb") for p in _MEM_PCTS],
    ]


MEMORY_2019 = Adapter(
    family="azure-functions",
    table="app_memory",
    schema=APP_MEMORY,
    format="csv",
    columns={
        "HashOwner": pl.String(),
        "HashApp": pl.String(),
        "SampleCount": pl.Int64(),
        "AverageAllocatedMb": pl.Float64(),
        **{f"AverageAllocatedMb_pct{p}": pl.Float64() for p in _MEM_PCTS},
    },
    map_rows=_map_memory,
    drop_when={
        "missing app id": null_in("app"),
        "missing or non-numeric average": null_in("average_mb"),
    },
    sources=(
        SourceFile(
            "azure-functions-2019-memory",
            "app_memory_percentiles.anon.d01.csv",
            note="per app per day: allocated-memory average and percentiles (days 1-12)",
            patterns=("app_memory_percentiles.anon.d*.csv",),
        ),
    ),
    licence=LICENCE,
    citation=CITE_2019,
    homepage=f"{REPO}/blob/master/AzureFunctionsDataset2019.md",
    absolute_time=False,
    caveats=CAVEATS_2019,
)

# ---- 2021: one row per invocation, END time logged ----


def _map_2021(names: list[str], source_id: str, path: Path) -> list[pl.Expr]:
    return [
        pl.lit(source_id).alias("source"),
        pl.col("app"),
        pl.col("func").alias("function"),
        difference_ns(seconds_ns("end_timestamp", 10**9), seconds_ns("duration", 10**9)).alias(
            TIME_NS
        ),
        pl.col("duration").alias("duration_s"),
    ]


REQUESTS_2021 = Adapter(
    family="azure-functions",
    table="function_requests",
    format="csv",
    columns={
        "app": pl.String(),
        "func": pl.String(),
        "end_timestamp": pl.Float64(),
        "duration": pl.Float64(),
    },
    map_rows=_map_2021,
    drop_when={
        "missing function id": null_in("function"),
        "missing or non-numeric end_timestamp/duration": null_in(TIME_NS, "duration_s"),
        "negative duration": pl.col("duration_s") < 0,
    },
    sources=(
        SourceFile(
            "azure-functions-2021",
            "AzureFunctionsInvocationTraceForTwoWeeksJan2021.rar",
            url=f"{REPO}/raw/master/data/AzureFunctionsInvocationTraceForTwoWeeksJan2021.rar",
            note="every invocation of 119 apps over 2 weeks, Jan 2021 (RAR or extracted .txt/.csv)",
            patterns=(
                "AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt",
                "AzureFunctionsInvocationTraceForTwoWeeksJan2021.csv",
            ),
        ),
    ),
    licence=LICENCE,
    citation=CITE_2021,
    homepage=f"{REPO}/blob/master/AzureFunctionsInvocationTrace2021.md",
    absolute_time=False,
    caveats=CAVEATS_2021,
)

ADAPTERS = (INVOCATIONS_2019, DURATIONS_2019, MEMORY_2019, REQUESTS_2021)
