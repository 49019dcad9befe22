"""Goodput (DistServe): how much of the load was served within its latency SLOs.

A request is good when it succeeded and meets every given SLO. Anchoring is stated: `service`
measures from the actual send (what the engine did), `schedule` from the intended send time (what
a user arriving on the trace's schedule saw — includes client lag and --max-concurrency queueing,
free of coordinated omission). Attainment = good / all requests of the run, where errors and
dropped requests count as bad; TPOT is undefined for 1-token outputs, which then pass TPOT.
A request the client itself failed (error_kind ``client``) says nothing about the server: it is
left out of goodput altogether (neither good nor bad; `client_saturation` counts it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import polars as pl

from burstlab.errors import UsageError
from burstlab.params import parse_pairs, parse_seconds
from burstlab.results import Result, Summary

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


def _positive_seconds(text: str) -> float:
    value = parse_seconds(text)
    if not value > 0:
        raise ValueError("must be > 0 seconds")
    return value


def parse_slo(text: str | None, anchor: str = "service") -> SLO | None:
    """Parse ``ttft=0.5,tpot=50ms,e2e=10`` (seconds; ``ms`` and ``s`` suffixes accepted) into an
    SLO anchored at `anchor` ("service" or "schedule"); None for no text."""
    if anchor not in ("service", "schedule"):
        raise UsageError(f"expected service or schedule, found {anchor!r}", param="slo_anchor")
    values = parse_pairs(
        text, param="slo", value=_positive_seconds, keys=SLO_KEYS, expected="KEY=SECONDS"
    )
    if not values:
        return None
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


@dataclass(frozen=True)
class Goodput(Result):
    """How much of a run was served within its SLOs: attainment = good / all requests (errors
    and dropped requests count as bad; the client's own failures are left out), good
    requests/s and good output tokens/s over the run's duration, and the pass rate of each SLO
    on its own."""

    slo: SLO
    requests: int
    good: int
    attainment: float
    goodput_rps: float
    goodput_output_tps: float
    pass_rate: dict[str, float]

    def __getitem__(self, key: str) -> Any:  # goodput["attainment"] keeps working
        return self.to_dict()[key]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "slo": self.slo.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Goodput:
        return cls(**{**data, "slo": SLO(**data["slo"])})

    def table(self) -> pl.DataFrame:
        return pl.DataFrame(
            [
                {
                    "slo": ", ".join(f"{k} ≤ {v:g} s" for k, v in self.slo.given.items()),
                    "requests": self.requests,
                    "good": self.good,
                    "attainment": self.attainment,
                    "good req/s": self.goodput_rps,
                    "good tok/s": self.goodput_output_tps,
                    **{f"{k} pass": v for k, v in self.pass_rate.items()},
                }
            ]
        )

    def summary(self) -> Summary:
        return Summary(f"goodput ({self.slo.anchor}-anchored)").add("", self.table())


def goodput(per_request: pl.DataFrame, slo: SLO, duration_s: float) -> Goodput:
    """Attainment, good requests/s, good output tokens/s and per-SLO pass rates.

    `per_request` is metrics.per_request(records); `duration_s` the run's length (seconds).
    Requests the client itself failed (error_kind ``client``) are left out.
    """
    if "error_kind" in per_request.columns:
        per_request = per_request.filter(pl.col("error_kind").fill_null("") != "client")
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
    return Goodput(
        slo=slo,
        requests=total,
        good=n_good,
        attainment=n_good / total if total else 0.0,
        goodput_rps=n_good / duration,
        goodput_output_tps=good_tokens / duration,
        pass_rate={k: (float(frame[k].sum()) / total if total else 0.0) for k in checks},
    )
