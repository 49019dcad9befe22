"""Parquet written atomically with burstlab's provenance in the key-value metadata.

Every Parquet file a stage writes goes through `write_atomic` (`burstlab.atomic`: a temp
file in the same folder, then rename), so a crash never leaves a half file that a catalog view would read. Provenance
(source URL, sha256, licence, citation, t0_utc, rows read / kept / dropped by reason) lives in
one JSON document under the key ``burstlab`` so any Parquet reader can see it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from burstlab.atomic import staged_file

METADATA_KEY = b"burstlab"


def write_atomic(
    data: pl.DataFrame | pa.Table,
    dest: str | Path,
    metadata: Mapping[str, Any] | None = None,
    *,
    compression: str = "zstd",
) -> Path:
    """Write `data` to `dest` atomically, with `metadata` as JSON under the ``burstlab`` key."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    table = data.to_arrow() if isinstance(data, pl.DataFrame) else data
    if metadata is not None:
        kv = dict(table.schema.metadata or {})
        kv[METADATA_KEY] = json.dumps(metadata, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(kv)
    with staged_file(dest) as tmp:
        pq.write_table(table, tmp, compression=compression)
    return dest


def finalize_atomic(tmp: str | Path, dest: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Stamp metadata onto a Parquet file a streaming writer produced, then rename it into place.

    Streaming sinks (DuckDB COPY, polars sink_parquet) cannot know rows dropped until they
    finish, so they write to `tmp`; this copies it batch by batch (bounded memory) into a new
    file whose footer carries `metadata`, then renames that into `dest`.
    """
    tmp, dest = Path(tmp), Path(dest)
    src = pq.ParquetFile(tmp)
    kv = dict(src.schema_arrow.metadata or {})
    kv[METADATA_KEY] = json.dumps(dict(metadata), sort_keys=True, default=str).encode()
    out_schema = src.schema_arrow.with_metadata(kv)
    with (
        staged_file(dest) as staged,
        pq.ParquetWriter(staged, out_schema, compression="zstd") as writer,
    ):
        for batch in src.iter_batches(batch_size=1 << 20):
            writer.write_batch(batch)
    tmp.unlink(missing_ok=True)
    return dest


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The burstlab provenance document of a Parquet file ({} when it has none)."""
    # The file footer's key-value metadata, not the Arrow schema's: writers such as polars'
    # sink_parquet put it only there once a table has nested (list) columns.
    kv = pq.ParquetFile(path).metadata.metadata or {}
    raw = kv.get(METADATA_KEY)
    return json.loads(raw) if raw else {}
