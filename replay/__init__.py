"""burstlab.replay: fire a trace or a synthetic load at a live OpenAI-compatible engine with timed,
open-loop HTTP clients, and measure TTFT, TPOT, ITL, E2E and goodput (the fourth stage).

The package itself is callable: ``burstlab.replay(requests, config, out)`` is `replay`.

- `replay(requests, config, out)` → `RunResult`: one run, records streamed to
  ``out/records/`` as they finish, ``summary.json``, ``report.html``.
- `ReplayConfig(client=ClientOptions(url=…), schedule=ScheduleOptions(speedup=…), slo=SLO(…))`.
- `search_capacity(...)` → `CapacityResult`: the highest load whose SLO attainment holds.
- `calibrate(rates)` → `Calibration`: this client's own ceiling against the instant server.
- `compare_loads(real, synthetic, config, out)` → `LoadComparison`: one server, two loads.
- `downstream_fidelity(trace, config, out, train=…)` → `DownstreamFidelity`: K real windows,
  K synthetic seeds and K of each baseline, each on a fresh engine, judged against the real
  envelope (`judge`).
- `read_records(run_dir)`: the per-request records of a run as a polars frame;
  `read_summary(run_dir)` → its `RunSummary` (typed ``summary.json``; `Goodput` inside).
- `run_charts(records, summary)`: the run's charts (rates, lag, in flight, latencies), stacked
  as one altair chart, as the run's ``report.html`` shows them.
"""

import sys
import types

from burstlab.replay.capacity import CapacityResult, replay_probe, search_capacity
from burstlab.replay.ceiling import Calibration, calibrate
from burstlab.replay.client import ClientOptions
from burstlab.replay.downstream import (
    DownstreamFidelity,
    LoadComparison,
    compare_loads,
    downstream_fidelity,
)
from burstlab.replay.goodput import SLO, Goodput, parse_slo
from burstlab.replay.records import read_records
from burstlab.replay.report import run_charts
from burstlab.replay.run import ReplayConfig, RunResult, replay, target_engine
from burstlab.replay.schedule import ScheduleOptions
from burstlab.replay.summary import RunSummary, read_summary

__all__ = [
    "SLO",
    "Calibration",
    "CapacityResult",
    "ClientOptions",
    "DownstreamFidelity",
    "Goodput",
    "LoadComparison",
    "ReplayConfig",
    "RunResult",
    "RunSummary",
    "ScheduleOptions",
    "calibrate",
    "compare_loads",
    "downstream_fidelity",
    "parse_slo",
    "read_records",
    "read_summary",
    "replay",
    "replay_probe",
    "run_charts",
    "search_capacity",
    "target_engine",
]


class _CallableModule(types.ModuleType):
    """`burstlab.replay` is both this package and, called, the `replay` function: the package
    face promises ``bl.replay(...)``, and ``import burstlab.replay`` binds the package to that
    name, so the package forwards calls."""

    def __call__(self, *args, **kwargs):
        return replay(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
