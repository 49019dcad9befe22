"""burstlab.fitting: burstiness analytics, arrival and length models, the workload spec.

Public API (each takes a polars frame or LazyFrame of a canonical table and returns a result
object that carries its diagnostics):

- `workload.fit_workload(frame, where=, by=, gof=)` → WorkloadFit (``.spec`` for synth)
- `arrivals.fit_arrivals(frame)` → ArrivalFit; `arrivals.detect_resolution(times)`
- `modulation.fit_modulation(times)` → ModulationFit (rate curve × burst regime), built on
  `hmm.fit_poisson_hmm` and `dispersion.implied_idc` / `dispersion.fit_log_ar`
- `burstiness.burstiness(frame, by=)` → BurstinessReport; `burstiness.dispersion_curve(times)`
- `lengths.fit_lengths(frame)` → LengthsFit
- `sessions.fit_sessions`, `prefix.fit_prefix`, `serverless.*`, `servegen.import_servegen`
- `spec.WorkloadSpec` (`load`, `save`, `to_json`, `from_json`); `report.write_report`

Modules are imported on use, so `import burstlab.fitting` stays cheap.
"""
