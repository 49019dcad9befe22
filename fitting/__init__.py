"""burstlab.fitting: burstiness analytics, arrival and length models, and the workload spec they
produce (the second stage; it reads traces and writes a `burstlab.spec.WorkloadSpec`).

Each function takes a polars frame or LazyFrame of a canonical table (or an array of arrival
times in seconds) and returns a result that carries its diagnostics: ``.summary()`` (a
readable table), ``.table()`` (polars) and ``.to_dict()``.

- `fit(frame, where=, by=, gof=)` → `WorkloadFit`; ``.spec`` is what synth generates from.
- `burstiness(frame, by=)` → `BurstinessReport`: IAT CV, dispersion curve, ACF, Hurst, peaks.
- `fit_arrivals(times)` → `ArrivalFit`; `detect_resolution(times)` → `Resolution`.
- `fit_modulation(times)` → `ModulationFit` (rate curve × burst regime).
- `fit_lengths(frame)` → `LengthsFit`; `fit_sessions(frame)`; `fit_prefix(frame)`.
- Serverless: `function_stats`, `execution_times`, `fit_cold_starts`, `functions_workload`.
- `import_servegen(paths)` → a spec from Alibaba ServeGen per-client windows.
"""

from burstlab.fitting.analytics import BurstinessReport, burstiness
from burstlab.fitting.arrivals import ArrivalFit, Resolution, detect_resolution, fit_arrivals
from burstlab.fitting.lengths import LengthsFit, fit_lengths
from burstlab.fitting.modulation import ModulationFit, fit_modulation
from burstlab.fitting.prefix import fit_prefix
from burstlab.fitting.servegen import import_servegen
from burstlab.fitting.serverless import (
    ColdStartFit,
    execution_times,
    fit_cold_starts,
    function_stats,
    functions_workload,
)
from burstlab.fitting.sessions import SessionFit, fit_sessions
from burstlab.fitting.workload import WorkloadFit, fit

__all__ = [
    "ArrivalFit",
    "BurstinessReport",
    "ColdStartFit",
    "LengthsFit",
    "ModulationFit",
    "Resolution",
    "SessionFit",
    "WorkloadFit",
    "burstiness",
    "detect_resolution",
    "execution_times",
    "fit",
    "fit_arrivals",
    "fit_cold_starts",
    "fit_lengths",
    "fit_modulation",
    "fit_prefix",
    "fit_sessions",
    "function_stats",
    "functions_workload",
    "import_servegen",
]
