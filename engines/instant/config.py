"""The instant server's configuration, shared by the parent (`server.py`) and the child."""

from __future__ import annotations

from dataclasses import dataclass, field

from burstlab.engines.instant.faults import FAULTS
from burstlab.errors import UsageError

HOST = "127.0.0.1"
#: The model name the instant server serves unless told otherwise.
DEFAULT_MODEL = "burstlab-instant"


@dataclass(frozen=True)
class InstantConfig:
    """Everything that shapes the server's answers. Times in seconds."""

    host: str = HOST
    port: int = 0
    model: str = DEFAULT_MODEL
    chunk_tokens: int = 1
    delay_s: float = 0.0  # response headers → first token chunk (a TTFT floor)
    itl_s: float = 0.0  # gap between token chunks
    faults: dict[str, float] = field(default_factory=dict)
    slow_itl_s: float = 0.05
    usage_style: str = "separate"  # or "final-chunk" (llama.cpp /v1/completions)
    workers: int = 1
    seed: int = 0
    default_max_tokens: int = 16
    max_model_len: int = 32768

    def validate(self) -> None:
        unknown = sorted(set(self.faults) - set(FAULTS))
        if unknown:
            raise UsageError(
                f"unknown fault mode(s) {unknown}; expected some of {list(FAULTS)}", param="faults"
            )
        total = sum(self.faults.values())
        if any(p < 0 for p in self.faults.values()) or total > 1.0 + 1e-9:
            raise UsageError(
                f"fault probabilities must be ≥ 0 and sum to ≤ 1, got {self.faults}", param="faults"
            )
        if self.chunk_tokens < 1 or self.workers < 1:
            raise UsageError("chunk_tokens and workers must be ≥ 1")
        if min(self.delay_s, self.itl_s, self.slow_itl_s) < 0:
            raise UsageError("delays must be ≥ 0 seconds")
        if self.usage_style not in ("separate", "final-chunk"):
            raise UsageError(
                f"usage_style must be 'separate' or 'final-chunk', not {self.usage_style!r}"
            )
