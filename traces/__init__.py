"""burstlab.traces: real workload traces → canonical Parquet tables and a DuckDB catalog.

Public API (stable; later stages build on it):
- `sample_frame(name)`: a shipped real sample as a canonical ``requests`` DataFrame.
- `ingest(source, files=None, *, sample=False, data_dir=None, strict=False)` → `IngestResult`.
- `open(source, data_dir=None)` → polars LazyFrame of an ingested dataset.
- `scan(source, data_dir=None)` → LazyFrame of a Parquet path, an ingested id or a shipped sample.
- `connect(data_dir=None)` → DuckDB connection to the catalog (views per canonical table).
- `source_info(source_id)` → `SourceInfo` (licence, citation, homepage, documented caveats) of a
  known dataset id, or None.
"""

from burstlab.traces.catalog import connect, parquet_path
from burstlab.traces.embedded import SAMPLES, sample_frame
from burstlab.traces.generic import ingest_generic
from burstlab.traces.ingest import IngestResult, ingest, ingest_many
from burstlab.traces.registry import SourceInfo, source_info
from burstlab.traces.scan import open, scan
from burstlab.traces.select import select

__all__ = [
    "SAMPLES",
    "IngestResult",
    "SourceInfo",
    "connect",
    "ingest",
    "ingest_generic",
    "ingest_many",
    "open",
    "parquet_path",
    "sample_frame",
    "scan",
    "select",
    "source_info",
]
