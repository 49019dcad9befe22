"""The real samples shipped inside the package, as canonical tables, with no catalog needed.

Every stage's tests and examples start from these: `sample_frame("azure-llm-2023-conv")`
reads the shipped bytes through the same adapter and drop rules as `burstlab ingest`, so the
rows equal what ingest would write.
"""

from __future__ import annotations

import functools

import polars as pl

from burstlab.traces import registry
from burstlab.traces.adapter import TIME_NS, arrival_seconds
from burstlab.traces.ingest import prepare, to_table

#: Shipped samples: dataset id -> what it is.
SAMPLES = {
    "azure-llm-2023-code": "Azure LLM inference 2023, code: all 8,819 requests over 3,436 s",
    "azure-llm-2023-conv": "Azure LLM inference 2023, conversation: all 19,366 requests over 3,502 s",
    "mooncake-conversation": "Mooncake FAST'25 conversation trace: first 3,000 of 12,031 requests",
}


@functools.lru_cache(maxsize=8)
def _load(name: str) -> pl.DataFrame:
    path = registry.sample_path(name)
    adapter, _ = registry.samples()[name]
    frame = prepare(adapter, name, [path], [path]).filter(pl.col("_drop_reason").is_null())
    t0 = frame.select(pl.col(TIME_NS).min()).collect().item()
    frame = frame.sort(TIME_NS, maintain_order=True).with_columns(arrival_seconds(t0))
    return to_table(frame, adapter).collect()


def sample_frame(name: str) -> pl.DataFrame:
    """The canonical ``requests`` table of a shipped real sample (`SAMPLES` lists the names).

    ``arrival_s`` is float seconds since the sample's first request (first row 0.0), in time
    order as ingest writes it. The
    result is cached; polars frames are immutable, so sharing it is safe.
    """
    return _load(name)
