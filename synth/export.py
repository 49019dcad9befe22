"""Write a generated workload where the ecosystem can read it.

- Parquet in the canonical requests schema (atomic, provenance under the ``burstlab`` key:
  spec sha256, seed, knobs) — burstlab's own format, readable by DuckDB/polars/pandas.
- Mooncake-style JSONL (``timestamp`` integer ms, ``input_length``, ``output_length``,
  ``hash_ids``): the trace format AIPerf's and SGLang's trace replay and vLLM's timed-trace
  dataset read. A workload from a spec with a prefix model (or a session workload) carries its
  generated ids (synth/prefix.py); rows without prefix ids get fresh, unshared ids
  (⌈input/512⌉ blocks each), so a replay neither fakes nor loses cache hits.
- CSV in the BurstGPT schema (``Timestamp,Model,Request tokens,Response tokens,Total tokens,
  Log Type``), for tools that take BurstGPT files. Timestamps keep millisecond precision
  (BurstGPT's own are whole seconds). Rows without a model get ``GPT-4`` because vLLM's
  BurstGPT loader keeps only those rows; failed requests have ``Response tokens`` 0, as in
  BurstGPT.

- CSV in the Azure LLM inference trace schema (``TIMESTAMP,ContextTokens,GeneratedTokens``,
  timestamps ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC from `AZURE_EPOCH`): what inference-perf's
  ``AzurePublicDataset`` trace replay reads (it takes times relative to the first row).

Every writer goes through a temp file and a rename, so a crash never leaves half a file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa

from burstlab.atomic import staged_file
from burstlab.errors import InputError
from burstlab.parquet import write_atomic
from burstlab.scalars import integer
from burstlab.schema import conform

Format = Literal["parquet", "mooncake", "burstgpt", "azure"]
BLOCK_TOKENS = 512
#: Model written when a row has none (vLLM's BurstGPT loader keeps only GPT-4 rows).
DEFAULT_BURSTGPT_MODEL = "GPT-4"
#: Wall-clock time of arrival_s 0 in an Azure-schema CSV (the Azure 2023 trace's first day).
AZURE_EPOCH = dt.datetime(2023, 11, 16, tzinfo=dt.timezone.utc)
_LOG_TYPE = {"conversation": "Conversation log", "api": "API log"}


def fresh_hash_ids(input_tokens: np.ndarray, start: int = 0) -> pl.Series:
    """⌈input/512⌉ block ids per request, never shared between requests (ids from `start`)."""
    blocks = np.maximum(-(-input_tokens.astype(np.int64) // BLOCK_TOKENS), 0)
    offsets = np.concatenate([[0], np.cumsum(blocks)]).astype(np.int32)
    ids = np.arange(start, start + int(offsets[-1]), dtype=np.int64)
    return pl.Series("hash_ids", pa.ListArray.from_arrays(offsets, ids))


def write_parquet(frame: pl.DataFrame, dest: str | Path, metadata: dict[str, Any]) -> Path:
    """Canonical requests Parquet, atomically, with `metadata` (spec sha, seed, knobs)."""
    return write_atomic(conform(frame, "requests").collect(), Path(dest), metadata)


def write_mooncake(frame: pl.DataFrame, dest: str | Path) -> Path:
    """Mooncake JSONL: one object per request with keys in Mooncake's order."""
    inp = frame["input_tokens"].to_numpy()
    ids = frame["hash_ids"] if "hash_ids" in frame.columns else None
    if ids is None or ids.null_count() == frame.height:
        ids = fresh_hash_ids(inp)
    elif ids.null_count():
        start = integer(ids.list.max().max() or 0, "hash_ids") + 1
        ids = ids.fill_null(fresh_hash_ids(inp, start))  # fill only the rows without ids
    out = pl.DataFrame(
        {
            "timestamp": (frame["arrival_s"] * 1000.0).round(0).cast(pl.Int64),
            "input_length": frame["input_tokens"].cast(pl.Int64),
            "output_length": frame["output_tokens"].cast(pl.Int64),
            "hash_ids": ids.cast(pl.List(pl.Int64)),
        }
    )
    with staged_file(dest) as tmp:
        out.write_ndjson(tmp)
    return Path(dest)


def write_burstgpt(frame: pl.DataFrame, dest: str | Path) -> Path:
    """CSV in the BurstGPT `_1`/`_2` schema (see module docstring for the choices)."""
    kind = frame["kind"] if "kind" in frame.columns else pl.Series([None] * frame.height)
    model = frame["model"] if "model" in frame.columns else pl.Series([None] * frame.height)
    out = pl.DataFrame(
        {
            "Timestamp": frame["arrival_s"].round(3),
            "Model": model.cast(pl.String).fill_null(DEFAULT_BURSTGPT_MODEL),
            "Request tokens": frame["input_tokens"].cast(pl.Int64),
            "Response tokens": frame["output_tokens"].cast(pl.Int64),
        }
    ).with_columns(
        (pl.col("Request tokens") + pl.col("Response tokens")).alias("Total tokens"),
        kind.cast(pl.String)
        .replace_strict(_LOG_TYPE, default="Conversation log")
        .alias("Log Type"),
    )
    with staged_file(dest) as tmp:
        out.write_csv(tmp)
    return Path(dest)


def write_azure(frame: pl.DataFrame, dest: str | Path) -> Path:
    """CSV in the Azure LLM inference trace schema: TIMESTAMP is AZURE_EPOCH + arrival_s
    (microseconds, UTC, no zone suffix), ContextTokens and GeneratedTokens are token counts."""
    micros = (frame["arrival_s"] * 1e6).round(0).cast(pl.Int64)
    epoch = AZURE_EPOCH.replace(tzinfo=None)
    times = pl.select(
        (pl.lit(epoch) + pl.duration(microseconds=micros)).dt.strftime("%Y-%m-%d %H:%M:%S.%6f")
    ).to_series()
    out = pl.DataFrame(
        {
            "TIMESTAMP": times,
            "ContextTokens": frame["input_tokens"].cast(pl.Int64),
            "GeneratedTokens": frame["output_tokens"].cast(pl.Int64),
        }
    )
    with staged_file(dest) as tmp:
        out.write_csv(tmp)
    return Path(dest)


def export(
    frame: pl.DataFrame,
    dest: str | Path,
    fmt: Format | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write `frame` as `fmt` (default: from the suffix: .parquet, .jsonl, .csv)."""
    dest = Path(dest)
    if fmt is None:
        by_suffix = {".parquet": "parquet", ".jsonl": "mooncake", ".csv": "burstgpt"}
        fmt = by_suffix.get(dest.suffix)  # type: ignore[assignment]
        if fmt is None:
            raise InputError(
                dest, "cannot tell the format from the suffix", expected=list(by_suffix)
            )
    if fmt == "parquet":
        return write_parquet(frame, dest, metadata or {})
    if fmt == "mooncake":
        return write_mooncake(frame, dest)
    if fmt == "burstgpt":
        return write_burstgpt(frame, dest)
    if fmt == "azure":
        return write_azure(frame, dest)
    raise InputError(
        dest,
        "unknown export format",
        expected=["parquet", "mooncake", "burstgpt", "azure"],
        found=fmt,
    )
