"""Known caveats of a source, for the "Caveats" section of a dataset card.

Two kinds: MEASURED ones are found in the table the card ships (timestamp resolution, zero
gaps, caps, failed rows, long idle gaps), so they hold for exactly these rows; DOCUMENTED ones
come from the source's own documentation and the provenance notes in
`traces/samples/*/PROVENANCE.md`, and are looked up by source id prefix.
"""

from __future__ import annotations

import numpy as np
import polars as pl

#: Source-id prefix -> caveats stated by the source or found while reading its files.
DOCUMENTED: dict[str, tuple[str, ...]] = {
    "azure-llm-2023": (
        "The dataset page says the trace was collected on November 11th 2023, but every "
        "timestamp in the files is on 2023-11-16.",
        "Timestamps carry no time zone; burstlab reads them as UTC. They have 7 fractional "
        "digits (100 ns ticks), which are kept exactly.",
        "Token counts are as logged by the service; the tokenizer is not stated, and there is "
        "no failure flag (`failed` is always false).",
    ),
    "azure-llm-2024": (
        "Timestamps mix formats within one file (with and without a fractional part, all "
        "with a `+00:00` offset).",
        "No failure flag (`failed` is always false).",
    ),
    "azure-llm-2025": ("Requests carry `num_images`; image tokens are not separated out.",),
    "burstgpt": (
        "`Timestamp` is in whole seconds since the trace start, so many inter-arrival gaps are "
        "exactly 0; fit arrivals with a resolution-aware method, never by dropping zeros.",
        "A response of 0 tokens marks a failed request: those rows are kept with `failed=true`.",
        "`source_latency_s` (BurstGPT v3 `Elapsed time`) is the source's latency, not a "
        "burstlab measurement.",
    ),
    "mooncake": (
        "Timestamps are integer milliseconds but quantized to ~3 s buckets: many requests "
        "share one timestamp. Inter-arrival models below 3 s are not identifiable.",
        "`hash_ids` are 512-token prefix blocks; equal leading ids mean a shareable KV-cache "
        "prefix.",
    ),
    "azure-functions-2019": (
        "Only per-minute invocation counts per function: no per-request times.",
        "Per-day files: a function may be missing from days it was not invoked.",
    ),
    "azure-functions-2021": (
        "The trace gives each invocation's END time and duration; arrival = end − duration, "
        "so arrival times inherit any error of the logged duration.",
    ),
    "huawei": (
        "The pod id encodes the pod's CPU (millicores) and memory (MB); those columns are "
        "decoded from it.",
    ),
}


def documented_caveats(source: str) -> list[str]:
    """The documented caveats of a source id (longest matching prefix; [] when none known)."""
    matches = [p for p in DOCUMENTED if source.startswith(p)]
    return list(DOCUMENTED[max(matches, key=len)]) if matches else []


def sample_caveat(meta: dict) -> list[str]:
    """When the rows came from a sample shipped with burstlab, say which (an excerpt or whole)."""
    if not meta.get("sample"):
        return []
    from burstlab.traces.embedded import SAMPLES

    what = SAMPLES.get(str(meta.get("source")), "")
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
    from burstlab.fitting.arrivals import detect_resolution

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
    top = int(values.max())
    at_max = int((values == top).sum())
    near = int((values >= 0.99 * top).sum())
    share = near / values.len()
    if at_max >= 5 or (near >= 10 and share >= 0.005):
        return [
            f"`{column}` looks capped at {top:,}: {at_max:,} rows equal the maximum and {near:,} "
            f"({share:.2%}) lie within 1% of it (a max_tokens or context limit in the source)."
        ]
    return []
