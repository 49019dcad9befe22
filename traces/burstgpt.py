"""BurstGPT v1.2 (Azure OpenAI GPT service at a university, 121 days): ``BurstGPT_{1,2,3}.csv``
and the ``BurstGPT_without_fails_{1,2,3}.csv`` variants.

Columns are read BY NAME: the ``_3`` files insert ``Session ID`` and ``Elapsed time`` after
``Timestamp``. ``Timestamp`` is whole seconds since the trace start (so inter-arrival gaps of 0
are common — see docs/design.md §4). ``Response tokens`` = 0 marks a failed request: the row is
kept with ``failed=true``. ``Elapsed time`` (seconds, the source's own latency) goes to
``source_latency_s``. ``Log Type`` ``Conversation log`` / ``API log`` becomes ``kind``
``conversation`` / ``api``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from burstlab.traces.adapter import TIME_NS, Adapter, SourceFile, null_in, seconds_ns

REPO = "https://github.com/HPMLL/BurstGPT"
RELEASE = "https://github.com/HPMLL/BurstGPT/releases/download/v1.2"

#: Sizes and sha256 from the Git LFS pointers in traces/samples/burstgpt/PROVENANCE.md.
_KNOWN = {
    "BurstGPT_1.csv": (
        52_283_111,
        "4bb3783693d0a435686fbfc885615d2349bd067239079fa4b749f2e679e12122",
    ),
    "BurstGPT_without_fails_1.csv": (
        51_429_517,
        "a4d068a7113ec0290e74063a1b3447dc6001a30e4298eb313581b71006dda1f4",
    ),
    "BurstGPT_2.csv": (
        144_819_209,
        "44bf5942b03fca42c01a226a545ad3a750ec62688faecd67b6831c56a8928bf7",
    ),
    "BurstGPT_without_fails_2.csv": (
        142_376_815,
        "56193aa9b2bb26128ded43d2d29a960df6bf5af062bcfc9b005f3fcaa4e6e501",
    ),
}


def _source(part: int, without_fails: bool) -> SourceFile:
    stem = f"BurstGPT_without_fails_{part}" if without_fails else f"BurstGPT_{part}"
    size, sha = _KNOWN.get(f"{stem}.csv", (None, None))
    return SourceFile(
        f"burstgpt-{'without-fails-' if without_fails else ''}{part}",
        f"{stem}.csv",
        url=f"{RELEASE}/{stem}.csv",
        sha256=sha,
        size=size,
        note=f"part {part} of 3{', failed requests removed' if without_fails else ''}",
    )


def _map(names: list[str], source_id: str, path: Path) -> list[pl.Expr]:
    optional = {
        "session_id": pl.col("Session ID").cast(pl.String) if "Session ID" in names else None,
        "source_latency_s": pl.col("Elapsed time") if "Elapsed time" in names else None,
    }
    return [
        pl.lit(source_id).alias("source"),
        seconds_ns("Timestamp", 10**9).alias(TIME_NS),
        pl.col("Request tokens").alias("input_tokens"),
        pl.col("Response tokens").alias("output_tokens"),
        pl.col("Model").alias("model"),
        pl.col("Log Type")
        .str.strip_chars()
        .str.to_lowercase()
        .str.strip_suffix(" log")
        .alias("kind"),
        (pl.col("Response tokens") == 0).alias("failed"),
        *[(e if e is not None else pl.lit(None)).alias(k) for k, e in optional.items()],
    ]


ADAPTER = Adapter(
    family="burstgpt",
    table="requests",
    format="csv",
    columns={
        "Timestamp": pl.Float64(),
        "Model": pl.String(),
        "Request tokens": pl.Int64(),
        "Response tokens": pl.Int64(),
        "Total tokens": pl.Int64(),
        "Log Type": pl.String(),
    },
    optional_columns={"Session ID": pl.String(), "Elapsed time": pl.Float64()},
    map_rows=_map,
    drop_when={
        "missing or non-numeric Timestamp": null_in(TIME_NS),
        "missing or non-integer token count": null_in("input_tokens", "output_tokens"),
        "negative token count": (pl.col("input_tokens") < 0) | (pl.col("output_tokens") < 0),
    },
    sources=tuple(_source(p, wf) for wf in (False, True) for p in (1, 2, 3)),
    licence="CC-BY-4.0 (data); MIT (example code)",
    citation=(
        "Wang et al., BurstGPT: A Real-World Workload Dataset to Optimize LLM Serving Systems, "
        "KDD 2025 (doi 10.1145/3711896.3737413; arXiv 2401.17644)"
    ),
    homepage=REPO,
    absolute_time=False,
    caveats=(
        "`Timestamp` is in whole seconds since the trace start, so many inter-arrival gaps are "
        "exactly 0; fit arrivals with a resolution-aware method, never by dropping zeros.",
        "A response of 0 tokens marks a failed request: those rows are kept with `failed=true`.",
        "`source_latency_s` (BurstGPT v3 `Elapsed time`) is the source's latency, not a "
        "burstlab measurement.",
    ),
)
