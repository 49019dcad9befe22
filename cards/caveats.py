"""Known caveats of a source, for the "Caveats" section of a dataset card.

Two kinds: MEASURED ones are found in the table the card ships (timestamp resolution, zero
gaps, caps, failed rows, long idle gaps), so they hold for exactly these rows; DOCUMENTED ones
come from the source's own documentation and the provenance notes in
`traces/samples/*/PROVENANCE.md`. Those are per-source knowledge, so they live on the source
adapters (`Adapter.caveats`, `SourceFile.caveats`) and are read here through the traces face
(`traces.source_info`).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from burstlab import traces
from burstlab.fitting import detect_resolution
from burstlab.scalars import integer


def documented_caveats(source: str) -> list[str]:
    """The caveats the source adapters document for a dataset id ([] for an unknown id)."""
    info = traces.source_info(source)
    return list(info.caveats) if info is not None else []


def sample_caveat(meta: dict) -> list[str]:
    """When the rows came from a sample shipped with burstlab, say which (an excerpt or whole)."""
    if not meta.get("sample"):
        return []
    what = traces.SAMPLES.get(str(meta.get("source")), "")
    return [
        f"Converted from the copy shipped with burstlab (`{meta.get('sample_file', '?')}`)"
        + (f": {what}." if what else ".")
    ]


def measured_caveats(frame: pl.DataFrame) -> list[str]:
    """Caveats visible in a canonical `requests` (or `function_requests`) table itself."""
    out = []
    if "arrival_s" in frame.columns and frame.height > 1:
        out += _time_caveats(frame["arrival_s"].sort().to_numpy())
    for col in ("input_tokens", "output_tokens"):
        if col in frame.columns and frame[col].drop_nulls().len() > 0:
            out += _cap_caveat(frame[col].drop_nulls(), col)
    if "failed" in frame.columns:
        failed = int(frame["failed"].sum())
        if failed:
            out.append(
                f"{failed:,} rows ({failed / frame.height:.2%}) are failed requests "
                "(`failed=true`); drop them before fitting lengths."
            )
    return out


def _time_caveats(arrivals: np.ndarray) -> list[str]:
    out = []
    gaps = np.diff(arrivals)
    res = detect_resolution(arrivals)
    if res.resolution_s:
        out.append(
            f"Arrival times lie on a {res.resolution_s:g} s grid: {res.zero_gap_share:.1%} of "
            "inter-arrival gaps are 0, and no model can say how requests are spread within "
            "one grid step."
        )
    elif res.zero_gap_share > 0:
        out.append(
            f"{res.zero_gap_share:.2%} of inter-arrival gaps are exactly 0 (simultaneous requests)."
        )
    longest = float(gaps.max())
    if longest >= 60:
        at = float(arrivals[int(np.argmax(gaps))])
        out.append(
            f"The longest gap without any request is {longest:,.1f} s (after t = {at:,.1f} s): "
            "the trace has idle periods, not a steady rate."
        )
    return out


def _cap_caveat(values: pl.Series, column: str) -> list[str]:
    """A point mass at or just under the maximum suggests a cap (max_tokens, context limit)."""
    top = integer(values.max(), column)
    at_max = int((values == top).sum())
    near = int((values >= 0.99 * top).sum())
    share = near / values.len()
    if at_max >= 5 or (near >= 10 and share >= 0.005):
        return [
            f"`{column}` looks capped at {top:,}: {at_max:,} rows equal the maximum and {near:,} "
            f"({share:.2%}) lie within 1% of it (a max_tokens or context limit in the source)."
        ]
    return []
