"""Hold-out validation: fit on the start of a real trace, generate, judge against its end.

This is the experiment docs/design.md §4 defines. One synthetic sample is one draw, just as one
real window is; so the generator is run with several seeds and the report gives, per metric,
the median value over seeds and the share of seeds inside the real envelope, beside every
baseline (also run with the same seeds). Nothing here is tuned to a split: the caller passes
the split, and docs/synth.md reports two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from burstlab.errors import UsageError
from burstlab.results import Result, Summary
from burstlab.spec import WorkloadSpec
from burstlab.synth import suite as F
from burstlab.synth.baselines import BASELINES
from burstlab.synth.generate import generate

Fitter = Callable[[pl.DataFrame], WorkloadSpec]
SYNTH = "burstlab"
REAL = F.REAL


@dataclass(frozen=True)
class Holdout(Result):
    """Results of one hold-out experiment.

    `runs`: one FidelityResult per seed (each with burstlab and every baseline);
    `summary_table`: per generator and metric — median value over seeds, median closeness, share
    of seeds within the slackened envelope, and the envelope bounds.
    """

    train_s: float
    heldout_s: float
    seeds: tuple[int, ...]
    spec: WorkloadSpec
    runs: list[F.FidelityResult]
    summary_table: pl.DataFrame
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)  # seed-0 frames, for charts

    def verdicts(self, generator: str = SYNTH) -> dict[str, float]:
        """Metric → share of seeds where `generator` is inside the envelope."""
        rows = self.summary_table.filter(pl.col("generator") == generator)
        return dict(zip(rows["metric"], rows["within_share"], strict=True))

    def beats(self, generator: str = SYNTH, other: str = "poisson") -> dict[str, bool]:
        """Metric → is `generator`'s median closeness strictly better than `other`'s?"""
        piv = self.summary_table.pivot(on="generator", index="metric", values="closeness_median")
        return {
            m: F.closer(a, b)
            for m, a, b in zip(piv["metric"], piv[generator], piv[other], strict=True)
        }

    def table(self) -> pl.DataFrame:
        """Per generator and metric: median value, closeness and share of seeds inside."""
        return self.summary_table

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_s": self.train_s,
            "heldout_s": self.heldout_s,
            "seeds": list(self.seeds),
            "summary": self.summary_table.to_dicts(),
        }

    def summary(self) -> Summary:
        shares = self.verdicts()
        inside = sum(v >= 0.5 for v in shares.values())
        s = Summary(
            f"hold-out: fit on {self.train_s:,.0f} s, judged on the next {self.heldout_s:,.0f} s "
            f"over seeds {list(self.seeds)} — burstlab inside the real envelope on "
            f"{inside}/{len(shares)} metrics (in at least half of the seeds)"
        )
        s.add("median over seeds (the real envelope beside it)", self.wide("value_median"))
        s.add("share of seeds inside the envelope", self.wide("within_share"))
        return s

    def wide(self, column: str = "value_median") -> pl.DataFrame:
        """One row per metric, one column per generator, plus the envelope."""
        piv = self.summary_table.pivot(on="generator", index="metric", values=column)
        env = self.summary_table.select("metric", "env_low", "env_high").unique("metric")
        order = pl.DataFrame({"metric": list(F.ALL_METRICS), "_o": range(len(F.ALL_METRICS))})
        return piv.join(env, on="metric").join(order, on="metric").sort("_o").drop("_o")


def validate(
    frame: pl.DataFrame,
    fit: Fitter,
    *,
    train_s: float,
    heldout_s: float,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    gap_s: float = 0.0,
    step_s: float | None = None,
    slack: float = F.SLACK,
    resolution_s: float | None = None,
) -> Holdout:
    """Fit `fit(train)` on [0, train_s), generate `heldout_s` seconds per seed, and compare
    with the real [train_s + gap_s, + heldout_s), alongside the baselines.

    `resolution_s` (default: the grid the fit detected, `spec.arrivals.resolution_s`) snaps
    every frame's arrivals to the source's timestamp grid before the comparison."""
    if not callable(fit):
        raise UsageError(
            f"expected a function of the training rows that returns a spec (e.g. "
            f"lambda rows: burstlab.fit(rows).spec), found {type(fit).__name__}",
            param="fit",
        )
    train, held = F.split_holdout(frame, train_s, heldout_s, gap_s=gap_s)
    spec = fit(train)
    if resolution_s is None:
        resolution_s = spec.arrivals.resolution_s
    env = F.envelope(
        train, held, heldout_s, step_s=step_s, train_span_s=train_s, resolution_s=resolution_s
    )
    runs, first_frames = [], {}
    for seed in seeds:
        cands = {SYNTH: generate(spec, duration_s=heldout_s, seed=seed).frame}
        cands.update({n: g(train, heldout_s, seed) for n, g in BASELINES.items()})
        if not first_frames:
            first_frames = cands
        runs.append(
            F.fidelity(
                held,
                cands,
                envelope_=env,
                window_s=heldout_s,
                slack=slack,
                resolution_s=resolution_s,
            )
        )
    table = pl.concat([r.verdicts.with_columns(pl.lit(i).alias("run")) for i, r in enumerate(runs)])
    summary = table.group_by("generator", "metric", maintain_order=True).agg(
        pl.col("value").median().alias("value_median"),
        pl.col("value").min().alias("value_min"),
        pl.col("value").max().alias("value_max"),
        pl.col("closeness").median().alias("closeness_median"),
        pl.col("within").cast(pl.Float64).mean().alias("within_share"),
        pl.col("env_low").first(),
        pl.col("env_high").first(),
        pl.col("accept_low").first(),
        pl.col("accept_high").first(),
    )
    return Holdout(
        float(train_s),
        float(heldout_s),
        tuple(seeds),
        spec,
        runs,
        summary,
        {REAL: held, **first_frames},
    )
