"""Deterministic chunked generation on threads: the same seed gives the same numbers on any
machine, whatever its core count.

numpy's random generators and ufuncs release the GIL on bulk work, so threads do run in
parallel. Each fixed-size chunk gets its own generator seeded from the parent generator (one
draw of seeds up front), so the split depends only on `n`, never on the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
#: Rows per chunk: large enough that per-chunk overhead vanishes, small enough to use 2+ cores.
CHUNK = 1 << 20


def map_ranges(n: int, work: Callable[[int, int], T], chunk: int = CHUNK) -> list[T]:
    """Run `work(start, stop)` over [0, n) in fixed chunks on threads; results in order."""
    jobs = [(a, min(a + chunk, n)) for a in range(0, n, chunk)] or [(0, 0)]
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return [work(*job) for job in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: work(*job), jobs))


def map_chunks(
    rng: np.random.Generator,
    n: int,
    work: Callable[[np.random.Generator, int, int], T],
    chunk: int = CHUNK,
) -> list[T]:
    """Run `work(chunk_rng, start, stop)` over [0, n) in fixed chunks; results in order.
    Chunk k's generator is seeded by the k-th of one batch of seeds drawn from `rng`."""
    starts = range(0, n, chunk)
    seeds = rng.integers(0, 2**63 - 1, size=max(len(starts), 1))
    return map_ranges(
        n, lambda a, b: work(np.random.default_rng(int(seeds[a // chunk])), a, b), chunk
    )
