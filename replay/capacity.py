"""`burstlab capacity`: the highest load a target serves within its SLOs.

Searches the speedup (the trace played `speedup` times faster, so its request rate is
multiplied by it): first brackets the boundary by doubling (or halving) from the `first` speedup,
then bisects between the highest passing and the lowest failing one until they are within `tolerance` (relative) or the probe budget is
spent. A probe passes when its SLO attainment (goodput.py; errors count as bad) is ≥ `target`
(DistServe's 90% by default). Every probe is a full replay kept in its own subfolder, so the
answer can be audited.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from burstlab.atomic import write_json
from burstlab.errors import UsageError
from burstlab.replay.report import capacity_report
from burstlab.replay.run import ReplayConfig, replay
from burstlab.results import Result, Summary

Probe = Callable[[float, Path], dict]


@dataclass
class CapacityResult(Result):
    """Probes in the order run, and the best passing speedup (None when even the lowest failed)."""

    probes: pl.DataFrame
    best_speedup: float | None
    best_offered_rps: float | None
    target: float
    out: Path

    def table(self) -> pl.DataFrame:
        return self.probes

    def summary(self) -> Summary:
        best = (
            f"speedup ×{self.best_speedup:.4g} ({self.best_offered_rps or 0:.3g} req/s)"
            if self.best_speedup is not None
            else "none of the probes passed"
        )
        title = f"capacity at SLO attainment ≥ {self.target:g}: {best}"
        shown = [c for c in ("probe", "speedup", "offered_rps", "attainment", "goodput_rps",
                             "e2e_p99_s", "ttft_p99_s", "passed") if c in self.probes.columns]  # fmt: skip
        return Summary(title).add("probes, in the order run", self.probes.select(shown))

    def to_dict(self) -> dict:
        return {
            "target_attainment": self.target,
            "best_speedup": self.best_speedup,
            "best_offered_rps": self.best_offered_rps,
            "probes": self.probes.to_dicts(),
        }


def replay_probe(requests: pl.DataFrame | pl.LazyFrame, config: ReplayConfig) -> Probe:
    """A probe that replays `requests` with `config` at the probe's speedup (it replaces the
    config's own)."""
    if config.slo is None:
        raise UsageError("a capacity search needs SLOs (e.g. ttft=0.5,tpot=0.05)", param="slo")

    def probe(speedup: float, run_dir: Path) -> dict:
        sched = dataclasses.replace(config.schedule, speedup=speedup)
        # the probe folders belong to the search: a repeated search replaces them
        result = replay(
            requests, dataclasses.replace(config, schedule=sched), run_dir, overwrite=True
        )
        s = result.metrics
        assert s.goodput is not None  # the config has SLOs (checked above)
        return {
            "offered_rps": s.offered_rate_rps,
            "attainment": s.goodput.attainment,
            "goodput_rps": s.goodput.goodput_rps,
            "completed": s.counts.completed,
            "failed": s.counts.failed,
            "e2e_p99_s": s.full["e2e_s"].p99,
            "ttft_p99_s": s.full["ttft_s"].p99,
        }

    return probe


def search_capacity(
    probe: Probe,
    out: str | Path,
    *,
    target: float = 0.9,
    first: float = 1.0,
    tolerance: float = 0.1,
    max_probes: int = 10,
    on_probe: Callable[[dict], None] | None = None,
) -> CapacityResult:
    """Bracket then bisect the speedup; every probe's run lives in `out/probe-NN-xSPEEDUP`."""
    if not 0 < target <= 1:
        raise UsageError(f"attainment must be in (0, 1], found {target}", param="target")
    if not first > 0:
        raise UsageError(f"the first speedup must be > 0, found {first}", param="speedup")
    if not tolerance > 0:
        raise UsageError(f"must be > 0, found {tolerance}", param="tolerance")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def run(speedup: float) -> bool:
        run_dir = out / f"probe-{len(rows):02d}-x{speedup:.4g}"
        row = {"probe": len(rows), "speedup": speedup, "run_dir": str(run_dir)}
        row.update(probe(speedup, run_dir))
        row["passed"] = bool(row["attainment"] >= target)
        rows.append(row)
        if on_probe:
            on_probe(row)
        return row["passed"]

    good: float | None = None
    bad: float | None = None
    speedup = first
    if run(speedup):
        good = speedup
        while len(rows) < max_probes:
            speedup *= 2
            if run(speedup):
                good = speedup
            else:
                bad = speedup
                break
    else:
        bad = speedup
        while len(rows) < max_probes:
            speedup /= 2
            if run(speedup):
                good = speedup
                break
            bad = speedup
    while good is not None and bad is not None and len(rows) < max_probes:
        if bad / good - 1 <= tolerance:
            break
        mid = (good * bad) ** 0.5  # geometric: load spans orders of magnitude
        if run(mid):
            good = mid
        else:
            bad = mid
    probes = pl.DataFrame(rows)
    best = probes.filter(pl.col("speedup") == good) if good is not None else None
    result = CapacityResult(
        probes=probes,
        best_speedup=good,
        best_offered_rps=(best["offered_rps"][0] if best is not None and best.height else None),
        target=target,
        out=out,
    )
    write_json(out / "capacity.json", result.to_dict())
    if "offered_rps" in probes.columns and probes["offered_rps"].is_not_null().all():
        capacity_report(out, probes.sort("offered_rps"), target)
    return result
