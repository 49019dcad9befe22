"""Goodput (DistServe): how much of the load was served within its latency SLOs.

A request is good when it succeeded and meets every given SLO. Anchoring is stated: `service`
measures from the actual send (what the engine did), `schedule` from the intended send time (what
a user arriving on the trace's schedule saw — includes client lag and --max-concurrency queueing,
free of coordinated omission). Attainment = good / all requests of the run, where errors and
dropped requests count as bad; TPOT is undefined for 1-token outputs, which then pass TPOT.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import polars as pl

from burstlab.errors import ReplayError

Anchor = Literal["service", "schedule"]
SLO_KEYS = ("ttft", "tpot", "e2e")


@dataclass(frozen=True)
class SLO:
    """Latency objectives in seconds (None = not constrained) and their anchoring."""

    ttft: float | None = None
    tpot: float | None = None
    e2e: float | None = None
    anchor: Anchor = "service"

    @property
    def given(self) -> dict[str, float]:
        return {
            k: v
            for k, v in (("ttft", self.ttft), ("tpot", self.tpot), ("e2e", self.e2e))
            if v is not None
        }

    def to_dict(self) -> dict:
        return asdict(self)


def parse_slo(text: str | None, anchor: str = "service") -> SLO | None:
    """Parse `ttft=0.5,tpot=0.05,e2e=10` (seconds; an `ms` suffix is accepted) into an SLO."""
    if not text:
        return None
    if anchor not in ("service", "schedule"):
        raise ReplayError(f"--slo-anchor: expected service or schedule, found {anchor!r}")
    values: dict[str, float] = {}
    for part in text.split(","):
        key, sep, raw = part.strip().partition("=")
        key = key.strip().lower()
        if not sep or key not in SLO_KEYS:
            raise ReplayError(
                f"--slo: cannot read {part.strip()!r}; expected key=seconds with key in {list(SLO_KEYS)}"
            )
        raw = raw.strip().lower()
        scale = 1.0
        if raw.endswith("ms"):
            raw, scale = raw[:-2], 1e-3
        elif raw.endswith("s"):
            raw = raw[:-1]
        try:
            value = float(raw) * scale
        except ValueError:
            raise ReplayError(f"--slo: {key} value {raw!r} is not a number of seconds") from None
        if value <= 0:
            raise ReplayError(f"--slo: {key} must be > 0 seconds, found {value}")
        values[key] = value
    return SLO(**values, anchor=anchor)  # type: ignore[arg-type]


def slo_checks(slo: SLO) -> dict[str, pl.Expr]:
    """Per-SLO pass expressions over a per-request metrics frame (metrics.per_request)."""
    sfx = "_sched_s" if slo.anchor == "schedule" else "_s"
    checks: dict[str, pl.Expr] = {}
    if slo.ttft is not None:
        checks["ttft"] = pl.col("ok") & (pl.col("ttft" + sfx) <= slo.ttft)
    if slo.tpot is not None:
        checks["tpot"] = pl.col("ok") & (
            pl.col("tpot_s").is_null() | (pl.col("tpot_s") <= slo.tpot)
        )
    if slo.e2e is not None:
        checks["e2e"] = pl.col("ok") & (pl.col("e2e" + sfx) <= slo.e2e)
    return checks


def goodput(per_request: pl.DataFrame, slo: SLO, duration_s: float) -> dict:
    """Attainment, good requests/s, good output tokens/s and per-SLO pass rates.

    `per_request` is metrics.per_request(records); `duration_s` the run's length (seconds).
    """
    checks = slo_checks(slo)
    good = pl.col("ok")
    for expr in checks.values():
        good = good & expr
    total = per_request.height
    frame = per_request.select(
        good.fill_null(False).alias("good"),
        pl.col("output_tokens"),
        *[e.fill_null(False).alias(k) for k, e in checks.items()],
    )
    n_good = int(frame["good"].sum()) if total else 0
    good_tokens = int(frame.filter("good")["output_tokens"].fill_null(0).sum()) if total else 0
    duration = max(duration_s, 1e-9)
    return {
        "slo": slo.to_dict(),
        "requests": total,
        "good": n_good,
        "attainment": n_good / total if total else 0.0,
        "goodput_rps": n_good / duration,
        "goodput_output_tps": good_tokens / duration,
        "pass_rate": {k: (float(frame[k].sum()) / total if total else 0.0) for k in checks},
    }
