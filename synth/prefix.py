"""Prefix-block ids (``hash_ids``) for non-session workloads, drawn from a spec's prefix model,
and the block-reuse statistics the fidelity suite compares.

Generation (docs/synth.md, "Prefix sharing"). Requests are taken in arrival order. A request
of n input tokens holds b = ⌈n / block_tokens⌉ block ids. Its shared depth d (leading ids it
reuses) is the fitted fraction for its block count (`PrefixSpec.depth`) times b, rounded, at
least 1 when the fraction is > 0. When d > 0 it picks a *parent*: from the latest request at
or before the fitted gap for its depth (`PrefixSpec.reuse_gap`, seconds) back in time, the
nearest holding at least d blocks, `SEARCH` requests back at most — for d > 1 one that no
other request has continued yet (conversations are chains). Failing that, the target itself,
and d shrinks to its length; with no request that far back at all (the start of the
workload), the request shares what the shallowest fitted class shares, at that class's gap.
Its first d ids are the parent's first d ids; the rest are fresh. So a one-block system prompt
every request shares, or a conversation turn that continues an earlier prompt, come out of the
same two fitted tables.

Vectorised: the parent of every request is found at once; a reused block points at the same
position of its parent, and the chains (block 0 of a system prompt is copied from request to
request) are collapsed by pointer doubling — O(blocks · log chain) work, all in numpy.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from burstlab.errors import SpecError, UsageError
from burstlab.spec import PrefixSpec

#: At most this many prefix-block ids per workload (8 bytes each: 2 GB), as for sessions.
MAX_BLOCK_IDS = 1 << 28
#: How many requests back from the gap's target a parent long enough is searched for.
SEARCH = 256
#: Rows per chunk of the parent search (SEARCH × CHUNK candidates in memory at once).
CHUNK = 1 << 14


def block_counts(input_tokens: np.ndarray, block_tokens: int) -> np.ndarray:
    """⌈input / block_tokens⌉ per request (blocks), 0 for an empty prompt."""
    n = np.asarray(input_tokens, dtype=np.int64)
    return np.maximum(-(-n // block_tokens), 0)


def _bin_index(bins: list, key: np.ndarray) -> np.ndarray:
    """The bin each `key` (blocks) falls in: below the first bin the first, above the last
    the last."""
    lows = np.array([b.min_blocks for b in bins], dtype=np.int64)
    return np.clip(np.searchsorted(lows, key, side="right") - 1, 0, len(bins) - 1)


def _draw(bins: list, law: str, key: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per row, the ppf at uniform `u` of the law (the field named `law`) of the bin its `key`
    (blocks) falls in."""
    idx = _bin_index(bins, key)
    out = np.zeros(key.size, dtype=np.float64)
    for k, b in enumerate(bins):
        m = np.flatnonzero(idx == k)
        if m.size:
            out[m] = getattr(b, law).ppf(u[m])
    return out


def _scan(
    q: np.ndarray, need: np.ndarray, nblk: np.ndarray, taken: np.ndarray | None
) -> np.ndarray:
    """For each row, the nearest candidate q, q − 1, … (at most `SEARCH` back, ≥ 0) holding
    ≥ `need` blocks — and, with `taken`, not taken yet, claiming it (a contested candidate
    goes to the earliest row; the others look further back). −1 where none is found."""
    out = np.full(q.size, -1, dtype=np.int64)
    live = np.flatnonzero(q >= 0)
    for k in range(SEARCH):
        if live.size == 0:
            break
        c = q[live] - k
        inside = c >= 0
        live, c = live[inside], c[inside]
        ok = nblk[c] >= need[live]
        if taken is None:
            out[live[ok]] = c[ok]
        else:
            ok &= ~taken[c]
            rows, cand = live[ok], c[ok]
            _, win = np.unique(cand, return_index=True)  # rows ascend: the earliest wins
            out[rows[win]] = cand[win]
            taken[cand[win]] = True
        live = live[out[live] < 0]
    return out


def _parents(
    t: np.ndarray, nblk: np.ndarray, depth: np.ndarray, gap: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Parent of each request (−1: none) and its depth, clipped to what the parent holds.

    The gap's target is the latest request at or before t − gap (and before the request); from
    there up to `SEARCH` requests back, the nearest with ≥ depth blocks wins — for a share
    deeper than one block, the nearest such request *no other request has continued yet*
    (conversations are chains: on Mooncake 956 of 961 parents of a deeper share have one
    child); failing both, the target itself, and the depth shrinks to its length."""
    n = t.size
    rows = np.arange(n, dtype=np.int64)
    q = np.minimum(np.searchsorted(t, t - gap, side="right") - 1, rows - 1)
    q = np.where(depth > 0, q, -1)
    chain = depth > 1
    parent = np.full(n, -1, dtype=np.int64)
    one = np.flatnonzero(~chain & (q >= 0))
    parent[one] = _scan(q[one], depth[one], nblk, None)
    deep = np.flatnonzero(chain & (q >= 0))
    parent[deep] = _scan(q[deep], depth[deep], nblk, np.zeros(n, dtype=bool))
    miss = deep[parent[deep] < 0]
    parent[miss] = _scan(q[miss], depth[miss], nblk, None)  # a continued one will do
    miss = np.flatnonzero((q >= 0) & (parent < 0))
    parent[miss] = q[miss]  # none long enough: the target, the depth clipped below
    d = np.where(parent >= 0, np.minimum(depth, nblk[np.maximum(parent, 0)]), 0)
    parent[d == 0] = -1
    return parent, d


def prefix_hash_ids(
    prefix: PrefixSpec,
    rng: np.random.Generator,
    arrival_s: np.ndarray,
    input_tokens: np.ndarray,
    start_id: int = 0,
) -> pl.Series:
    """``hash_ids`` (a list column) for requests sorted by `arrival_s` (seconds) with
    `input_tokens`, drawn from `prefix`'s fitted model (module docstring); ids count up from
    `start_id` in order of first use. Same rng state → same ids."""
    depth_bins, gap_bins = prefix.depth or [], prefix.reuse_gap or []
    if not (depth_bins and gap_bins):
        raise SpecError("spec.prefix has no depth/reuse_gap model to generate hash_ids from")
    t = np.asarray(arrival_s, dtype=np.float64)
    nblk = block_counts(input_tokens, prefix.block_tokens)
    total = int(nblk.sum())
    if total > MAX_BLOCK_IDS:
        raise UsageError(
            f"the workload would hold {total:,} prefix-block ids (its inputs average "
            f"{float(np.mean(input_tokens)):,.0f} tokens); at most {MAX_BLOCK_IDS:,}: generate "
            "a shorter duration_s or a lower rate_scale",
            param="duration_s",
        )
    n = t.size
    u_depth, u_gap = rng.random(n), rng.random(n)
    frac = _draw(depth_bins, "fraction", nblk, u_depth)
    depth = np.clip(np.rint(frac * nblk), 0, nblk).astype(np.int64)
    depth = np.where((frac > 0) & (nblk > 0), np.maximum(depth, 1), depth)
    gap = _draw(gap_bins, "gap_s", np.maximum(depth, 1), u_gap)
    parent, got = _parents(t, nblk, depth, np.maximum(gap, 0.0))
    # no parent within reach (a gap that reaches before the first request): share what the
    # shallowest fitted class shares (Mooncake: the one-block system prompt) at its gap, as a
    # real request whose parent lies before the trace's start is seen to do
    lost = (depth > 0) & (parent < 0)
    if lost.any():
        first = gap_bins[0]
        shallow = np.where(lost, np.minimum(depth, first.max_blocks - 1), 0)
        g2 = np.asarray(first.gap_s.ppf(u_gap * first.gap_s.cdf(t - t[0])), dtype=np.float64)
        p2, d2 = _parents(t, nblk, shallow, np.maximum(g2, 0.0))
        parent, got = np.where(lost, p2, parent), np.where(lost, d2, got)
    depth = got
    return _resolve(nblk, parent, depth, start_id)


def _resolve(nblk: np.ndarray, parent: np.ndarray, depth: np.ndarray, start_id: int) -> pl.Series:
    """Ids from the parent structure: block j < depth[i] of request i is block j of
    parent[i]; the rest are fresh, numbered in order of first use from `start_id`. Block
    indices are int32 (at most `MAX_BLOCK_IDS` blocks)."""
    i32 = np.int32
    offsets = np.zeros(nblk.size + 1, dtype=np.int64)
    np.cumsum(nblk, out=offsets[1:])
    total = int(offsets[-1])
    off32 = offsets.astype(i32)
    # the reused blocks (the first depth[i] of request i) and the block each one copies
    d = depth.astype(i32)
    dstart = np.zeros(d.size + 1, dtype=i32)
    np.cumsum(d, out=dstart[1:])
    who = np.repeat(np.arange(d.size, dtype=i32), d)
    j = np.arange(int(dstart[-1]), dtype=i32)
    j -= dstart[:-1][who]
    active = off32[:-1][who]
    active += j
    src = np.arange(total, dtype=i32)
    j += off32[np.maximum(parent, 0).astype(i32)][who]
    src[active] = j
    del who, j
    shared = np.zeros(total, dtype=bool)
    shared[active] = True
    reused = active
    # pointer doubling: every reused block ends up pointing at the fresh block it copies
    while active.size:
        nxt = src[src[active]]
        src[active] = nxt
        active = active[shared[nxt]]
    # fresh blocks count up in block (= arrival) order; a reused one takes its source's id
    ids = np.empty(total, dtype=np.int64)
    fresh = ~shared
    ids[fresh] = np.arange(start_id, start_id + total - reused.size, dtype=np.int64)
    ids[reused] = ids[src[reused]]
    return pl.Series("hash_ids", pa.ListArray.from_arrays(off32, ids))


# --------------------------------------------------------------------------- statistics


def _flat(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(request index, block id) per block occurrence and the arrival (seconds) per request,
    requests with ids in arrival order (ties in row order); None when the frame has no ids."""
    if "hash_ids" not in frame.columns or frame["hash_ids"].null_count() == frame.height:
        return None
    f = (
        frame.select("arrival_s", "hash_ids")
        .drop_nulls("hash_ids")
        .with_row_index("_row")
        .sort("arrival_s", "_row")
        .drop("_row")
        .with_row_index("req")
    )
    occ = f.select("req", pl.col("hash_ids").alias("id")).explode("id").drop_nulls("id")
    return (
        occ["req"].to_numpy().astype(np.int64),
        occ["id"].to_numpy().astype(np.int64),
        f["arrival_s"].to_numpy().astype(np.float64),
    )


def block_reuse(
    frame: pl.DataFrame, resolution_s: float | None = None
) -> tuple[float, np.ndarray, np.ndarray] | None:
    """Block reuse of a requests frame: (reuse rate, distance in requests, distance in
    seconds). A block occurrence is reused when an earlier request used its id; the distances,
    one per reused occurrence, are to the latest such request. Arrival times are floored to
    `resolution_s` first (the suite's `snap`). None when the frame has no ``hash_ids``; the
    rate is NaN when it has no block."""
    flat = _flat(frame)
    if flat is None:
        return None
    req, ids, t = flat
    if resolution_s is not None:
        t = np.floor(t / resolution_s + 1e-9) * resolution_s
    if ids.size == 0:
        return float("nan"), np.zeros(0, dtype=np.int64), np.zeros(0)
    order = np.lexsort((req, ids))
    si, sr = ids[order], req[order]
    idx = np.arange(si.size)
    same_id = np.concatenate([[False], si[1:] == si[:-1]])
    new_pair = ~same_id | np.concatenate([[True], sr[1:] != sr[:-1]])
    # first sorted index of each occurrence's (id, request) pair; the one before it, when it
    # holds the same id, is the latest earlier request that used the id
    first = np.maximum.accumulate(np.where(new_pair, idx, 0))
    has_prev = same_id[first]
    prev_req = sr[np.maximum(first - 1, 0)]
    reused = np.empty(si.size, dtype=bool)
    reused[order] = has_prev
    dist_r = np.empty(si.size, dtype=np.int64)
    dist_r[order] = sr - prev_req
    dist_s = np.empty(si.size, dtype=np.float64)
    dist_s[order] = t[sr] - t[prev_req]
    return float(reused.mean()), dist_r[reused], dist_s[reused]
