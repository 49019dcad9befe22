"""Prefix sharing from prefix-block ids (Mooncake ``hash_ids``: one id per 512-token block).

- hit rate: share of all block occurrences whose id was seen earlier in the trace (what an
  unbounded prefix cache could reuse);
- shared prefix: per request, the number of *leading* blocks already seen (what a prefix cache
  keyed on the prompt prefix can reuse);
- popularity: Zipf exponent s of block reuse (least squares of log count on log rank over
  blocks used more than once).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from burstlab.fitting.lengths import empirical_model
from burstlab.scalars import number
from burstlab.spec import Marginal, PointMass, PrefixSpec


def fit_prefix(frame: pl.DataFrame | pl.LazyFrame, block_tokens: int = 512) -> PrefixSpec | None:
    """Prefix-sharing statistics of a ``requests`` table; None without ``hash_ids``."""
    lf = frame.lazy()
    if "hash_ids" not in lf.collect_schema().names():
        return None
    df = (
        lf.select("arrival_s", "hash_ids")
        .drop_nulls("hash_ids")
        .with_row_index("req")
        .sort("arrival_s", "req")
        .collect()
    )
    if df.is_empty():
        return None
    blocks = (
        df.select("req", pl.col("hash_ids").alias("block"))
        .explode("block")
        .drop_nulls("block")
        .with_row_index("pos")
        .with_columns(pl.int_range(pl.len()).over("req").alias("i"))
    )
    first_seen = blocks.group_by("block").agg(pl.col("pos").min().alias("first"))
    blocks = blocks.join(first_seen, on="block").with_columns(
        (pl.col("pos") > pl.col("first")).alias("seen")
    )
    if blocks.is_empty():  # every list of block ids is empty: nothing to measure, as without ids
        return None
    hit_rate = number(blocks["seen"].mean(), "hash_ids")
    # leading run of seen blocks per request
    lead = (
        blocks.sort("req", "i")
        .group_by("req", maintain_order=True)
        .agg(pl.col("seen").cum_min().sum().alias("shared"))["shared"]
        .to_numpy()
    )
    kv, w = np.unique(lead, return_counts=True)
    pos = kv > 0
    masses = []
    if (~pos).any():
        masses.append(PointMass(0.0, float(w[~pos].sum() / w.sum())))
    emp = empirical_model(kv[pos].astype(float), w[pos].astype(float), float(w.sum()), masses)
    shared = Marginal(
        empirical=emp, min=float(kv.min()), max=float(kv.max()), mean=float(lead.mean())
    )
    reuse = blocks.group_by("block").len()["len"].to_numpy()
    reuse = np.sort(reuse[reuse > 1])[::-1]
    zipf = None
    if reuse.size >= 10:
        ranks = np.arange(1, reuse.size + 1)
        zipf = float(-np.polyfit(np.log(ranks), np.log(reuse), 1)[0])
    return PrefixSpec(
        block_tokens=block_tokens,
        hit_rate=hit_rate,
        shared_prefix_blocks=shared,
        popularity_zipf_s=zipf if zipf is None or math.isfinite(zipf) else None,
    )
