"""burstlab.synth: generate workloads from a spec and judge them against held-out real data (the
third stage; it reads a `burstlab.spec.WorkloadSpec`, never fitting's internals).

- `generate(spec, duration_s=, seed=, rate_scale=, speedup=)` → `Workload` (``.frame`` is a
  canonical requests table); `export(frame, path, fmt)` writes Parquet, Mooncake or BurstGPT.
- `fidelity(heldout, candidates, train=)` → `FidelityResult`: the fidelity suite
  (docs/design.md §4) with the real-vs-real envelope.
- `validate(frame, fit, train_s=, heldout_s=)` → `Holdout`: fit on the start, judge the rest.
- `all_baselines(train, duration_s)`: the peer generators (Poisson, Gamma renewal, BurstGPT demo).
- `window(frame, start_s, end_s)`: the rows arriving in [start_s, end_s), rebased to start at 0;
  `split_holdout(frame, train_s, heldout_s)` cuts a training period and a held-out window.
"""

from burstlab.synth.baselines import all_baselines
from burstlab.synth.export import export
from burstlab.synth.generate import Workload, generate, with_arrival_model
from burstlab.synth.holdout import Holdout, validate
from burstlab.synth.suite import FidelityResult, fidelity, split_holdout, window

__all__ = [
    "FidelityResult",
    "Holdout",
    "Workload",
    "all_baselines",
    "export",
    "fidelity",
    "generate",
    "split_holdout",
    "validate",
    "window",
    "with_arrival_model",
]
