"""The instant server's counters: one row of int64 per worker in shared memory, summed into the
Prometheus text that `/metrics` serves (any worker can answer it for all)."""

from __future__ import annotations

import ctypes
from multiprocessing.sharedctypes import RawArray

from burstlab.engines.instant.faults import FAULTS

COUNTERS = (
    "requests_completions",
    "requests_chat",
    "requests_tokenize",
    "requests_other",
    "prompt_tokens",
    "completion_tokens",
    "responses_complete",
    *(f"fault_{f}" for f in FAULTS),
)
INDEX = {name: i for i, name in enumerate(COUNTERS)}


def shared_counters(workers: int) -> ctypes.Array[ctypes.c_int64]:
    """Zeroed counters for `workers` rows, shared with processes forked afterwards."""
    return RawArray(ctypes.c_int64, workers * len(COUNTERS))


def prometheus_text(counters: ctypes.Array[ctypes.c_int64], workers: int) -> str:
    """Counters summed over worker rows, in the Prometheus text format."""
    n = len(COUNTERS)
    total = {
        name: sum(counters[w * n + i] for w in range(workers)) for i, name in enumerate(COUNTERS)
    }
    out = ["# TYPE burstlab_instant_requests_total counter"]
    for endpoint in ("completions", "chat", "tokenize", "other"):
        value = total[f"requests_{endpoint}"]
        out.append(f'burstlab_instant_requests_total{{endpoint="{endpoint}"}} {value}')
    for name in ("prompt_tokens", "completion_tokens", "responses_complete"):
        out += [
            f"# TYPE burstlab_instant_{name}_total counter",
            f"burstlab_instant_{name}_total {total[name]}",
        ]
    out.append("# TYPE burstlab_instant_faults_total counter")
    out += [f'burstlab_instant_faults_total{{fault="{f}"}} {total["fault_" + f]}' for f in FAULTS]
    out.append("# TYPE burstlab_instant_worker_generations_total counter")
    for w in range(workers):
        row = (
            counters[w * n + INDEX["requests_completions"]]
            + counters[w * n + INDEX["requests_chat"]]
        )
        out.append(f'burstlab_instant_worker_generations_total{{worker="{w}"}} {row}')
    return "\n".join(out) + "\n"
