"""burstlab: real LLM-serving and serverless workload traces, turned into knowledge and load.

``import burstlab as bl`` finds every step here; importing it loads no stage (each name
resolves on first use):

    frame = bl.scan("azure-llm-2023-conv")          # traces: Parquet, ingested id or sample
    bl.ingest("azure-llm-2023-conv", sample=True)    # traces: canonical Parquet + catalog
    bl.burstiness(frame).summary()                   # fitting: how bursty
    fit = bl.fit(frame); fit.spec.save("conv.json")  # fitting: models → a bl.WorkloadSpec
    load = bl.generate(fit.spec, duration_s=600)     # synth: a synthetic workload
    bl.fidelity(heldout, {"synthetic": load.frame})  # synth: judged against held-out data
    with bl.engines.local() as engine: ...           # engines: a real local llama.cpp
    run = bl.replay(frame, config, "runs/one")       # replay: timed load, metrics
    bl.card(run.run_dir, "cards/run")                # cards: a Hugging Face dataset card

The stages are subpackages that import only earlier ones: ``bl.traces`` → ``bl.fitting`` →
``bl.synth`` → ``bl.replay`` → ``bl.cards``, with ``bl.engines`` beside replay. Errors form one
tree under `BurstlabError` (see `burstlab.errors`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from burstlab.errors import (
    BurstlabError,
    EngineError,
    FitError,
    InputError,
    MissingExtraError,
    ReplayError,
    SchemaError,
    SpecError,
    UsageError,
)

if TYPE_CHECKING:  # the lazy names below, for static checkers; __getattr__ resolves them
    from burstlab import cards, engines, fitting, replay, synth, traces
    from burstlab.cards import card
    from burstlab.fitting import burstiness, fit
    from burstlab.spec import WorkloadSpec
    from burstlab.synth import fidelity, generate, validate
    from burstlab.traces import connect, ingest, open, sample_frame, scan

__version__ = "0.1.0"

#: public name -> "module:attribute" (or "module" for a stage); resolved on first use.
_LAZY = {
    "scan": "burstlab.traces:scan",
    "open": "burstlab.traces:open",
    "ingest": "burstlab.traces:ingest",
    "connect": "burstlab.traces:connect",
    "sample_frame": "burstlab.traces:sample_frame",
    "burstiness": "burstlab.fitting:burstiness",
    "fit": "burstlab.fitting:fit",
    "WorkloadSpec": "burstlab.spec:WorkloadSpec",
    "generate": "burstlab.synth:generate",
    "fidelity": "burstlab.synth:fidelity",
    "validate": "burstlab.synth:validate",
    "card": "burstlab.cards:card",
    "traces": "burstlab.traces",
    "fitting": "burstlab.fitting",
    "synth": "burstlab.synth",
    "replay": "burstlab.replay",  # a callable package: bl.replay(...) runs a replay
    "cards": "burstlab.cards",
    "engines": "burstlab.engines",
}

#: Every public name, the lazy ones (_LAZY) spelled out so that static checkers see them.
__all__ = [
    "BurstlabError",
    "EngineError",
    "FitError",
    "InputError",
    "MissingExtraError",
    "ReplayError",
    "SchemaError",
    "SpecError",
    "UsageError",
    "WorkloadSpec",
    "__version__",
    "burstiness",
    "card",
    "cards",
    "connect",
    "engines",
    "fidelity",
    "fit",
    "fitting",
    "generate",
    "ingest",
    "open",
    "replay",
    "sample_frame",
    "scan",
    "synth",
    "traces",
    "validate",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'burstlab' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = importlib.import_module(module)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
