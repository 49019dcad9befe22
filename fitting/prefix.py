"""Prefix sharing from prefix-block ids (Mooncake ``hash_ids``: one id per 512-token block).

Requests are taken in arrival order (ties in row order); a block occurrence is *reused* when
an earlier request used the same id. Measured (the summary statistics of `PrefixSpec`):

- hit rate: share of all block occurrences that are reused (what an unbounded prefix cache
  could reuse);
- shared prefix: per request, the number of *leading* blocks that are reused (what a prefix
  cache keyed on the prompt prefix can reuse), in blocks and as a fraction of the request's
  blocks;
- reuse distance: per reused block, the requests and the seconds since the previous request
  that used the same id;
- popularity: Zipf exponent s of block reuse (least squares of log count on log rank over
  blocks used more than once).

Fitted (the generative model synth draws ``hash_ids`` from, docs/synth.md "Prefix sharing"):

- ``depth``: by the request's block count (half-octave bins, merged until each holds
  `MIN_BIN_REQUESTS`), the law of the shared fraction (leading reused blocks ÷ blocks) with
  atoms at 0 and 1 — how reuse relates to input length;
- ``reuse_gap``: by the shared depth (half-octave bins, merged likewise), the law of the time
  (seconds) since the previous use of the deepest shared block — the request's *parent*. On
  Mooncake this separates the one-block system prompt every request shares (gap ≈ 0 s) from
  conversation turns that continue an earlier prompt (gap ≈ 100 s).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from burstlab.fitting.lengths import empirical_model
from burstlab.scalars import number
from burstlab.spec import (
    EmpiricalDist,
    Marginal,
    PointMass,
    PrefixDepthBin,
    PrefixSpec,
    ReuseGapBin,
)

#: A depth or reuse-gap bin holds at least this many requests (sparser bins are merged).
MIN_BIN_REQUESTS = 50
#: Histogram resolution of the fitted laws (bins per factor of 10).
PER_DECADE = 20


def _half_octaves(top: int) -> list[int]:
    """Bin edges 1, 2, 4, 5, 8, 11, 16, 22, 32, 45, 64, 90, 128, … (⌊2^(k/2)⌋ for k ≥ 2,
    distinct, after 1) up past `top`."""
    edges, k = [1], 2
    while edges[-1] <= top:
        e = math.floor(2 ** (k / 2))
        if e > edges[-1]:
            edges.append(e)
        k += 1
    return edges


def block_bins(values: np.ndarray, min_count: int = MIN_BIN_REQUESTS) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) block-count bins over `values` (integers ≥ 1): half-octaves, a bin
    with fewer than `min_count` values merged into the next one (the last into the previous)."""
    edges = _half_octaves(int(values.max()))
    counts = np.histogram(values, bins=edges)[0]
    bins: list[list[int]] = []
    acc, lo = 0, edges[0]
    for hi, c in zip(edges[1:], counts, strict=True):
        acc += int(c)
        if acc >= min_count:
            bins.append([lo, hi, acc])
            acc, lo = 0, hi
    if acc or not bins:
        if bins:
            bins[-1][1] = edges[-1]
        else:
            bins.append([edges[0], edges[-1], acc])
    return [(b[0], b[1]) for b in bins]


def log_histogram(
    x: np.ndarray,
    n_total: float,
    masses: list[PointMass],
    top: float | None = None,
    weights: np.ndarray | None = None,
) -> EmpiricalDist:
    """Log-space histogram of positive values `x` (`PER_DECADE` bins a decade), probabilities
    relative to `n_total` observations (or total weight), plus `masses` for the rest. `top`
    caps the last edge (1.0 for fractions). Without values: one empty bin, all mass on the
    atoms."""
    if x.size == 0:
        hi = 1.0 if top is None else top
        return EmpiricalDist([hi / 2, hi], [0.0], masses)
    lo, hi = float(x.min()), float(x.max())
    end = hi * (1 + 1e-9) if hi > 0 else 1e-9
    if top is not None:
        end = min(end, top)
    if end <= lo:
        end = lo * (1 + 1e-9)
    k = max(1, math.ceil(math.log10(end / lo) * PER_DECADE))
    edges = np.geomspace(lo, end, k + 1)
    edges[0], edges[-1] = lo, end
    counts = np.histogram(x, bins=edges, weights=weights)[0]
    return EmpiricalDist(
        [float(e) for e in edges], [float(c / n_total) for c in counts], list(masses)
    )


def _fraction_law(f: np.ndarray, weights: np.ndarray | None = None) -> EmpiricalDist:
    """Shared fractions in [0, 1]: atoms at 0 and 1, a log histogram strictly between;
    `weights` per fraction (default 1)."""
    w = np.ones(f.size) if weights is None else weights
    total = float(w.sum())
    masses = [PointMass(v, float(w[f == v].sum() / total)) for v in (0.0, 1.0) if np.any(f == v)]
    inner = (f > 0) & (f < 1)
    return log_histogram(f[inner], total, masses, top=1.0, weights=w[inner])


def _gap_law(g: np.ndarray, weights: np.ndarray | None = None) -> EmpiricalDist:
    """Gaps in seconds ≥ 0: an atom at 0 (same timestamp), a log histogram above; `weights`
    per gap (default 1)."""
    w = np.ones(g.size) if weights is None else weights
    total = float(w.sum())
    zero = g == 0
    masses = [PointMass(0.0, float(w[zero].sum() / total))] if zero.any() else []
    return log_histogram(g[~zero], total, masses, weights=w[~zero])


#: Inverse-probability weights of the parent gaps are capped at this value.
MAX_GAP_WEIGHT = 20.0


def observable_weights(gaps: np.ndarray, history_s: np.ndarray) -> np.ndarray:
    """Inverse-probability weights that undo the observation window: a gap of g seconds can
    only be seen from a request with ≥ g seconds of trace before it, so it is weighted by
    1 / (share of requests with that much history), capped at `MAX_GAP_WEIGHT`."""
    h = np.sort(history_s)
    share = 1.0 - np.searchsorted(h, gaps, side="left") / max(h.size, 1)
    return np.minimum(1.0 / np.maximum(share, 1.0 / MAX_GAP_WEIGHT), MAX_GAP_WEIGHT)


def _integer_law(x: np.ndarray) -> EmpiricalDist:
    """Integers ≥ 1 (requests): `empirical_model`'s half-integer log bins."""
    kv, w = np.unique(x, return_counts=True)
    return empirical_model(kv.astype(float), w.astype(float), float(w.sum()), [])


def reuse_table(frame: pl.DataFrame | pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """Per-request and per-block reuse of a requests table with ``hash_ids``.

    Returns ``(requests, blocks)`` or None without ids: ``requests`` has one row per request
    with ids, in arrival order: ``req`` (0, 1, …), ``arrival_s``, ``blocks`` (ids it holds),
    ``shared`` (leading reused blocks), ``parent_gap_s`` (seconds since the previous use of
    its deepest shared block; null when nothing is shared). ``blocks`` has one row per block
    occurrence: ``req``, ``i`` (position), ``reused`` and, when reused, ``distance_requests``
    and ``distance_s`` to the previous request that used the id."""
    lf = frame.lazy()
    if "hash_ids" not in lf.collect_schema().names():
        return None
    df = (
        lf.select("arrival_s", "hash_ids")
        .drop_nulls("hash_ids")
        .with_row_index("row")
        .sort("arrival_s", "row")
        .drop("row")
        .with_row_index("req")
        .collect()
    )
    if df.is_empty():
        return None
    t = df["arrival_s"].to_numpy().astype(np.float64)
    blocks = (
        df.select("req", pl.col("hash_ids").alias("block"))
        .explode("block")
        .drop_nulls("block")
        .with_columns(pl.int_range(pl.len()).over("req").alias("i"))
    )
    if blocks.is_empty():  # every list of block ids is empty: nothing to measure
        return None
    # the previous request (strictly earlier) that used each id
    prev = (
        blocks.select("block", "req")
        .unique(maintain_order=True)
        .sort("block", "req")
        .with_columns(pl.col("req").shift(1).over("block").alias("prev"))
    )
    blocks = blocks.join(prev, on=["block", "req"], how="left").sort("req", "i")
    req = blocks["req"].to_numpy().astype(np.int64)
    reused = blocks["prev"].is_not_null().to_numpy()
    pi = blocks["prev"].fill_null(0).to_numpy().astype(np.int64)
    blocks = blocks.with_columns(
        pl.Series("reused", reused),
        pl.Series("distance_requests", req - pi),
        pl.Series("distance_s", t[req] - t[pi]),
    ).with_columns(
        pl.when(pl.col("reused")).then(pl.col(c)).alias(c)
        for c in ("distance_requests", "distance_s")
    )
    per_req = blocks.group_by("req", maintain_order=True).agg(
        pl.col("reused").cum_min().sum().cast(pl.Int64).alias("shared"),
        pl.len().cast(pl.Int64).alias("blocks"),
        pl.col("distance_s").alias("_d"),
    )
    per_req = per_req.with_columns(
        pl.when(pl.col("shared") > 0)
        .then(pl.col("_d").list.get(pl.col("shared") - 1, null_on_oob=True))
        .alias("parent_gap_s")
    ).drop("_d")
    requests = (
        df.select("req", "arrival_s")
        .join(per_req, on="req", how="left")
        .with_columns(pl.col("shared").fill_null(0), pl.col("blocks").fill_null(0))
        .sort("req")
    )
    return requests, blocks.drop("block", "prev")


def fit_prefix(frame: pl.DataFrame | pl.LazyFrame, block_tokens: int = 512) -> PrefixSpec | None:
    """Prefix-sharing statistics and the generative prefix model of a ``requests`` table
    (module docstring); None without ``hash_ids``. `block_tokens`: tokens per block id."""
    tables = reuse_table(frame)
    if tables is None:
        return None
    requests, blocks = tables
    hit_rate = number(blocks["reused"].mean(), "hash_ids")
    lead = requests["shared"].to_numpy()
    nblk = requests["blocks"].to_numpy()
    kv, w = np.unique(lead, return_counts=True)
    pos = kv > 0
    masses = []
    if (~pos).any():
        masses.append(PointMass(0.0, float(w[~pos].sum() / w.sum())))
    emp = empirical_model(kv[pos].astype(float), w[pos].astype(float), float(w.sum()), masses)
    shared = Marginal(
        empirical=emp, min=float(kv.min()), max=float(kv.max()), mean=float(lead.mean())
    )
    reused = blocks.filter(pl.col("reused"))
    zipf = _zipf(frame)
    has = nblk > 0
    frac = lead[has] / nblk[has]
    spec = PrefixSpec(
        block_tokens=block_tokens,
        hit_rate=hit_rate,
        shared_prefix_blocks=shared,
        popularity_zipf_s=zipf,
        shared_fraction_mean=float(frac.mean()) if frac.size else None,
        requests=requests.height,
    )
    if reused.height:
        spec.reuse_distance_requests = _integer_law(reused["distance_requests"].to_numpy())
        spec.reuse_distance_s = _gap_law(np.maximum(reused["distance_s"].to_numpy(), 0.0))
    t = requests["arrival_s"].to_numpy().astype(np.float64)
    gaps = np.maximum(requests["parent_gap_s"].fill_null(0.0).to_numpy().astype(np.float64), 0.0)
    sh = lead > 0
    if not sh.any():  # nothing is ever shared: all-zero depths, gaps never drawn
        if frac.size:
            spec.depth = [PrefixDepthBin(1, 2, int(frac.size), _fraction_law(frac))]
            spec.reuse_gap = [ReuseGapBin(1, 2, 0, _gap_law(np.zeros(1)))]
        return spec
    gap_bins = block_bins(lead[sh])
    # undo the observation window: a parent g seconds back is seen only from requests with
    # ≥ g s of trace before them; the rest of those requests were seen sharing just the
    # shallowest class (or nothing), so that class gives up the same weight
    w = np.ones(lead.size)
    deep = lead >= gap_bins[0][1]
    w[deep] = observable_weights(gaps[deep], t - t[0])
    spec.reuse_gap = [
        ReuseGapBin(lo, hi, int(m.sum()), _gap_law(gaps[sh][m], w[sh][m]))
        for lo, hi in gap_bins
        for m in [(lead[sh] >= lo) & (lead[sh] < hi)]
    ]
    shallow = (lead > 0) & ~deep
    wd = w[has]
    bins = []
    for lo, hi in block_bins(nblk[has]):
        m = (nblk[has] >= lo) & (nblk[has] < hi)
        excess = float((wd[m & deep[has]] - 1.0).sum())
        sm = m & shallow[has]
        if sm.any():
            wd[sm] = max(sm.sum() - excess, 0.0) / sm.sum()
        bins.append(PrefixDepthBin(lo, hi, int(m.sum()), _fraction_law(frac[m], wd[m])))
    spec.depth = bins
    return spec


def _zipf(frame: pl.DataFrame | pl.LazyFrame) -> float | None:
    """Zipf exponent of how often a block id is used, over ids used more than once."""
    counts = (
        frame.lazy()
        .select(pl.col("hash_ids").alias("block"))
        .explode("block")
        .drop_nulls("block")
        .group_by("block")
        .len()
        .collect()["len"]
        .to_numpy()
    )
    reuse = np.sort(counts[counts > 1])[::-1]
    if reuse.size < 10:
        return None
    ranks = np.arange(1, reuse.size + 1)
    zipf = float(-np.polyfit(np.log(ranks), np.log(reuse), 1)[0])
    return max(zipf, 0.0) if math.isfinite(zipf) else None


def prefix_note(prefix: PrefixSpec) -> str:
    """One line for a fit's notes: what was measured and what synth will generate."""
    med = ""
    if prefix.reuse_distance_s is not None:
        q = float(np.asarray(prefix.reuse_distance_s.ppf(0.5)))
        med = f", median reuse distance {q:.0f} s"
    frac = prefix.shared_fraction_mean
    return (
        f"prefix sharing from hash_ids of {prefix.requests:,} requests: block reuse "
        f"{prefix.hit_rate:.1%}, shared prefix {'-' if frac is None else f'{frac:.1%}'} of a "
        f"request's blocks on average{med}; synth generates hash_ids from it"
    )
