"""Mooncake FAST'25 traces (Kimi): JSONL with ``timestamp`` (ms since trace start),
``input_length``, ``output_length`` and ``hash_ids`` (one id per 512-token prefix block).

Quirk: the conversation trace's timestamps sit in ~3 s buckets, so many requests share one
time; nothing here spreads them (fitting must know, see docs/design.md §4). Times are relative, so
there is no t0_utc.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from burstlab.traces.adapter import TIME_NS, Adapter, SourceFile, null_in, seconds_ns

REPO = "https://github.com/kvcache-ai/Mooncake"
RAW = "https://raw.githubusercontent.com/kvcache-ai/Mooncake/main/FAST25-release"


def _map(names: list[str], source_id: str, path: Path) -> list[pl.Expr]:
    return [
        pl.lit(source_id).alias("source"),
        seconds_ns("timestamp", 10**6).alias(TIME_NS),
        pl.col("input_length").alias("input_tokens"),
        pl.col("output_length").alias("output_tokens"),
        pl.lit(source_id.removeprefix("mooncake-")).alias("kind"),
        pl.lit(False).alias("failed"),
        pl.col("hash_ids"),
    ]


ADAPTER = Adapter(
    family="mooncake",
    table="requests",
    format="jsonl",
    columns={
        "timestamp": pl.Int64(),
        "input_length": pl.Int64(),
        "output_length": pl.Int64(),
        "hash_ids": pl.List(pl.Int64()),
    },
    map_rows=_map,
    drop_when={
        "missing timestamp": null_in(TIME_NS),
        "missing token count": null_in("input_tokens", "output_tokens"),
        "negative token count": (pl.col("input_tokens") < 0) | (pl.col("output_tokens") < 0),
    },
    sources=(
        SourceFile(
            "mooncake-conversation",
            "conversation_trace.jsonl",
            url=f"{RAW}/traces/conversation_trace.jsonl",
            size=3_029_533,
            sample="mooncake/conversation_trace.head3000.jsonl",
            note="12,031 Kimi chat requests over ~59 min (first 3,000 lines shipped)",
        ),
        SourceFile(
            "mooncake-synthetic",
            "synthetic_trace.jsonl",
            url=f"{RAW}/traces/synthetic_trace.jsonl",
            size=1_136_313,
            note="3,993 requests, Poisson arrivals",
        ),
        SourceFile(
            "mooncake-toolagent",
            "toolagent_trace.jsonl",
            url=f"{RAW}/traces/toolagent_trace.jsonl",
            note="23,608 tool & agent requests",
        ),
        SourceFile(
            "mooncake-arxiv",
            "mooncake_trace.jsonl",
            url=f"{RAW}/arxiv-trace/mooncake_trace.jsonl",
            note="the July 2024 arXiv-report trace",
        ),
    ),
    licence="Apache-2.0 (repository licence; the traces state no separate data licence)",
    citation=(
        "Qin et al., Mooncake: Trading More Storage for Less Computation — A KVCache-centric "
        "Architecture for Serving LLM Chatbot, FAST 2025 (arXiv 2407.00079)"
    ),
    homepage=REPO,
    absolute_time=False,
    caveats=(
        "Timestamps are integer milliseconds but quantized to ~3 s buckets: many requests "
        "share one timestamp. Inter-arrival models below 3 s are not identifiable.",
        "`hash_ids` are 512-token prefix blocks; equal leading ids mean a shareable KV-cache "
        "prefix.",
    ),
)
