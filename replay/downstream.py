"""Downstream fidelity (docs/design.md §4): the same server under a real and a synthetic load.

A synthetic workload is only as good as the serving numbers it produces, so both loads are
replayed with one configuration against one server, one after the other, and compared on p99
E2E latency, p99 TTFT and goodput. A ratio (synthetic ÷ real) near 1 means the synthetic load
stresses the server the way the real one does; this lives in replay/, the only stage that can
drive a server, and reads synth's output as an ordinary requests table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from burstlab.atomic import write_json
from burstlab.replay.run import ReplayConfig, replay
from burstlab.results import Result, Summary

#: (column, where in summary.json): the numbers compared between loads.
COMPARED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("p50_e2e_s", ("full", "e2e_s", "p50")),
    ("p99_e2e_s", ("full", "e2e_s", "p99")),
    ("p99_e2e_sched_s", ("full", "e2e_sched_s", "p99")),
    ("p99_ttft_s", ("full", "ttft_s", "p99")),
    ("attainment", ("goodput", "attainment")),
    ("goodput_rps", ("goodput", "goodput_rps")),
)


def _get(summary: Mapping, path: tuple[str, ...]) -> float | None:
    value: object = summary
    for key in path:
        if not isinstance(value, Mapping) or value.get(key) is None:
            return None
        value = value[key]
    return float(value)  # type: ignore[arg-type]


@dataclass
class LoadComparison(Result):
    """One row per load (`loads`), each load's run directory, and synthetic ÷ real ratios."""

    loads: pl.DataFrame
    runs: dict[str, Path]
    ratios: dict[str, float | None]

    def table(self) -> pl.DataFrame:
        return self.loads

    def summary(self) -> Summary:
        ratios = pl.DataFrame([{k: v for k, v in self.ratios.items()}])
        return (
            Summary("the same server under the real and the synthetic load")
            .add("per load", self.loads)
            .add("synthetic ÷ real", ratios)
        )

    def to_dict(self) -> dict:
        return {
            "loads": self.loads.to_dicts(),
            "ratios": self.ratios,
            "runs": {k: str(v) for k, v in self.runs.items()},
        }


def compare_loads(
    real: pl.DataFrame,
    synthetic: pl.DataFrame,
    config: ReplayConfig,
    out: str | Path,
    *,
    engine_info: dict | None = None,
    overwrite: bool = False,
) -> LoadComparison:
    """Replay `real` then `synthetic` with `config` into `<out>/real` and `<out>/synthetic`, and
    write the comparison to `<out>/comparison.json`.

    Goodput columns need `config.slo`. Each run keeps its full records, summary and report, so a
    surprising ratio can be traced to the requests behind it.
    """
    out = Path(out)
    rows, runs = [], {}
    for name, frame in (("real", real), ("synthetic", synthetic)):
        run_dir = out / name
        result = replay(frame, config, run_dir, engine_info=engine_info, overwrite=overwrite)
        summary = result.metrics.to_dict()
        counts = summary["counts"]
        rows.append(
            {
                "load": name,
                "requests": int(counts["scheduled"]),
                "completed": int(counts["completed"]),
                "failed": int(counts["failed"]),
                "offered_rps": summary["offered_rate_rps"],
                **{col: _get(summary, path) for col, path in COMPARED},
            }
        )
        runs[name] = run_dir
    table = pl.DataFrame(rows)
    real_row, synth_row = rows
    ratios = {
        col: (
            synth_row[col] / real_row[col] if real_row[col] and synth_row[col] is not None else None
        )
        for col, _ in COMPARED
    }
    result = LoadComparison(loads=table, runs=runs, ratios=ratios)
    write_json(out / "comparison.json", result.to_dict())
    return result
