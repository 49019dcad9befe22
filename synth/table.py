"""Build canonical `requests` tables from generated numpy columns (one place for the cast)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from burstlab.schema import conform


def requests_table(
    source: str,
    arrival_s: np.ndarray,
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    *,
    failed: np.ndarray | None = None,
    extra: Mapping[str, pl.Series | np.ndarray | list] | None = None,
) -> pl.DataFrame:
    """A canonical requests frame (burstlab/schema.py) from generated columns.

    `arrival_s` is seconds since the workload start, sorted; token counts are clipped to the
    int32 range by the caller. `extra` adds optional canonical columns (model, kind,
    session_id, hash_ids); anything else is dropped by `conform`.
    """
    n = len(arrival_s)
    cols: dict[str, object] = {
        "source": pl.repeat(source, n, eager=True, dtype=pl.String),
        "arrival_s": np.asarray(arrival_s, dtype=np.float64),
        "input_tokens": np.asarray(input_tokens, dtype=np.int32),
        "output_tokens": np.asarray(output_tokens, dtype=np.int32),
        "failed": np.zeros(n, dtype=bool) if failed is None else np.asarray(failed, dtype=bool),
    }
    if extra:
        cols.update(extra)
    return conform(pl.DataFrame(cols), "requests").collect()
