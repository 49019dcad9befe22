"""burstlab: real LLM-serving and serverless workload traces, turned into knowledge and load.

The pipeline is four stages, each a subpackage: ``burstlab.traces`` (ingest, catalog) →
``burstlab.fitting`` (burstiness, models, spec) → ``burstlab.synth`` (generation, fidelity) →
``burstlab.replay`` (timed HTTP load, metrics). Importing ``burstlab`` loads none of them:
the names below resolve on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute"; resolved lazily so `import burstlab` stays light.
_LAZY = {
    "open": "burstlab.traces.catalog:open",
    "ingest": "burstlab.traces.ingest:ingest",
    "catalog": "burstlab.traces.catalog:connect",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'burstlab' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
