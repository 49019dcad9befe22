"""`burstlab capacity`: the highest load a target serves within its SLOs.

Searches the rate scale (the trace's request rate multiplied by `scale`): first brackets the
boundary by doubling (or halving) from a start scale, then bisects between the highest passing
and the lowest failing scale until they are within `tolerance` (relative) or the probe budget is
spent. A probe passes when its SLO attainment (goodput.py; errors count as bad) is ≥ `target`
(DistServe's 90% by default). Every probe is a full replay kept in its own subfolder, so the
answer can be audited.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from burstlab.errors import ReplayError
from burstlab.replay.run import ReplayConfig, replay

Probe = Callable[[float, Path], dict]


@dataclass
class CapacityResult:
    """Probes in the order run, and the best passing scale (None when even the lowest failed)."""

    probes: pl.DataFrame
    best_scale: float | None
    best_offered_rps: float | None
    target: float
    out: Path

    def to_dict(self) -> dict:
        return {
            "target_attainment": self.target,
            "best_rate_scale": self.best_scale,
            "best_offered_rps": self.best_offered_rps,
            "probes": self.probes.to_dicts(),
        }


def replay_probe(requests, config: ReplayConfig) -> Probe:
    """A probe that replays `requests` at rate scale × config's own rate scale."""
    if config.slo is None:
        raise ReplayError("capacity search needs --slo (e.g. --slo ttft=0.5,tpot=0.05)")

    def probe(scale: float, run_dir: Path) -> dict:
        sched = dataclasses.replace(config.schedule, rate_scale=config.schedule.rate_scale * scale)
        # the probe folders belong to the search: a repeated search replaces them
        result = replay(
            requests, dataclasses.replace(config, schedule=sched), run_dir, overwrite=True
        )
        s = result.summary
        return {
            "offered_rps": s["offered_rate_rps"],
            "attainment": s["goodput"]["attainment"],
            "goodput_rps": s["goodput"]["goodput_rps"],
            "completed": s["counts"]["completed"],
            "failed": s["counts"]["failed"],
            "e2e_p99_s": s["full"]["e2e_s"]["p99"],
            "ttft_p99_s": s["full"]["ttft_s"]["p99"],
        }

    return probe


def search_capacity(
    probe: Probe,
    out: str | Path,
    *,
    target: float = 0.9,
    start: float = 1.0,
    tolerance: float = 0.1,
    max_probes: int = 10,
    on_probe: Callable[[dict], None] | None = None,
) -> CapacityResult:
    """Bracket then bisect the rate scale; every probe's run lives in `out/probe-NN-xSCALE`."""
    if not 0 < target <= 1:
        raise ReplayError(f"--target: attainment must be in (0, 1], found {target}")
    if start <= 0 or tolerance <= 0:
        raise ReplayError("start scale and tolerance must be > 0")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def run(scale: float) -> bool:
        run_dir = out / f"probe-{len(rows):02d}-x{scale:.4g}"
        row = {"probe": len(rows), "rate_scale": scale, "run_dir": str(run_dir)}
        row.update(probe(scale, run_dir))
        row["passed"] = bool(row["attainment"] >= target)
        rows.append(row)
        if on_probe:
            on_probe(row)
        return row["passed"]

    good: float | None = None
    bad: float | None = None
    scale = start
    if run(scale):
        good = scale
        while len(rows) < max_probes:
            scale *= 2
            if run(scale):
                good = scale
            else:
                bad = scale
                break
    else:
        bad = scale
        while len(rows) < max_probes:
            scale /= 2
            if run(scale):
                good = scale
                break
            bad = scale
    while good is not None and bad is not None and len(rows) < max_probes:
        if bad / good - 1 <= tolerance:
            break
        mid = (good * bad) ** 0.5  # geometric: load spans orders of magnitude
        if run(mid):
            good = mid
        else:
            bad = mid
    probes = pl.DataFrame(rows)
    best = probes.filter(pl.col("rate_scale") == good) if good is not None else None
    result = CapacityResult(
        probes=probes,
        best_scale=good,
        best_offered_rps=(best["offered_rps"][0] if best is not None and best.height else None),
        target=target,
        out=out,
    )
    (out / "capacity.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    if "offered_rps" in probes.columns and probes["offered_rps"].is_not_null().all():
        from burstlab.replay.report import capacity_report

        capacity_report(out, probes.sort("offered_rps"), target)
    return result
