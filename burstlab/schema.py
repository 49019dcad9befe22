"""Canonical tables (docs/design.md §1): the one shape every stage reads and writes.

Units are always seconds and tokens. A source adapter maps its columns onto one of these
schemas; `conform` casts, orders and checks a frame so that every Parquet file burstlab
writes has exactly these columns and types, whatever the source.
"""

from __future__ import annotations

from typing import Literal

import polars as pl
import pyarrow as pa

from burstlab.errors import SchemaError

TableKind = Literal["requests", "invocations", "function_requests", "cold_starts"]

#: One row per LLM request (BurstGPT, Azure LLM, Mooncake, synthetic).
REQUESTS: dict[str, pl.DataType] = {
    "source": pl.String(),
    "arrival_s": pl.Float64(),  # seconds since the trace's first request (first row is 0.0)
    "input_tokens": pl.Int32(),
    "output_tokens": pl.Int32(),  # 0 with failed=true is a failed request
    "model": pl.String(),
    "kind": pl.String(),
    "session_id": pl.String(),
    "failed": pl.Boolean(),
    "source_latency_s": pl.Float64(),  # the source's own latency, never ours
    "hash_ids": pl.List(pl.Int64()),  # prefix-block ids, 512 tokens a block (Mooncake)
    "num_images": pl.Int16(),
}

#: Serverless, per function per minute (Azure Functions 2019, Huawei per-minute tables).
INVOCATIONS: dict[str, pl.DataType] = {
    "source": pl.String(),
    "owner": pl.String(),
    "app": pl.String(),
    "function": pl.String(),
    "trigger": pl.String(),
    "minute": pl.Int32(),  # minutes since the trace start
    "count": pl.Int32(),
}

#: Serverless, per request (Azure Functions 2021, Huawei per-request table).
FUNCTION_REQUESTS: dict[str, pl.DataType] = {
    "source": pl.String(),
    "app": pl.String(),
    "function": pl.String(),
    "arrival_s": pl.Float64(),  # seconds since the trace start
    "duration_s": pl.Float64(),
}

#: Huawei cold-start events with per-component costs (seconds).
COLD_STARTS: dict[str, pl.DataType] = {
    "source": pl.String(),
    "region": pl.String(),
    "arrival_s": pl.Float64(),
    "function": pl.String(),
    "user": pl.String(),
    "pod_cpu_millicores": pl.Int32(),
    "pod_memory_mb": pl.Int32(),
    "total_s": pl.Float64(),
    "pod_allocation_s": pl.Float64(),
    "deploy_code_s": pl.Float64(),
    "deploy_dependency_s": pl.Float64(),
    "scheduling_s": pl.Float64(),
}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "requests": REQUESTS,
    "invocations": INVOCATIONS,
    "function_requests": FUNCTION_REQUESTS,
    "cold_starts": COLD_STARTS,
}

#: Columns that may never be null in a canonical table.
REQUIRED: dict[str, tuple[str, ...]] = {
    "requests": ("source", "arrival_s", "input_tokens", "output_tokens", "failed"),
    "invocations": ("source", "function", "minute", "count"),
    "function_requests": ("source", "function", "arrival_s"),
    "cold_starts": ("source", "arrival_s", "total_s"),
}


def schema(kind: str) -> dict[str, pl.DataType]:
    """The polars schema of a canonical table kind."""
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise SchemaError(
            f"unknown table kind {kind!r}; expected one of {sorted(SCHEMAS)}"
        ) from None


def arrow_schema(kind: str) -> pa.Schema:
    """The Arrow schema of a canonical table kind (what the Parquet files hold)."""
    return pl.DataFrame(schema=schema(kind)).to_arrow().schema


def conform(frame: pl.DataFrame | pl.LazyFrame, kind: str) -> pl.LazyFrame:
    """Cast and order `frame` to the canonical schema, adding absent optional columns as nulls.

    Extra columns are dropped. A missing required column raises SchemaError naming it, so an
    adapter bug surfaces at the adapter, not three stages later.
    """
    target = schema(kind)
    lf = frame.lazy()
    have = lf.collect_schema().names()
    missing = [c for c in REQUIRED[kind] if c not in have]
    if missing:
        raise SchemaError(
            f"{kind} table lacks required column(s) {missing}; expected {list(target)}, found {have}"
        )
    exprs = [
        (pl.col(name) if name in have else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in target.items()
    ]
    return lf.select(exprs)
