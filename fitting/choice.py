"""Which arrival model synth should use, chosen on the TRAINING rows only.

Three candidates, each scored on the two things the fidelity suite checks about arrivals
(docs/design.md §4), on one "closeness" scale (a distance, or |ln ratio|, as the suite ranks
generators):

- ``gap_ks``: KS distance between the model's gap distribution and the trace's gaps —
  renewal: its fitted family (in sample, 2–5 parameters); modulated/operational: the
  plug-in gaps of the time-warped ``within`` law (`operational_gap_ks`); modulated/real-time:
  the empirical gap law, OUT of sample (`cross_ks`: built on one half, scored on the other),
  since an empirical law scored on its own data would be perfect by construction.
- ``idc_rms_log_error``: RMS of ln(model IDC ÷ trace IDC) over the dispersion scales of the
  regime fit — renewal by simulation (`renewal_idc_error`), the regime by its implied curve.
  The real-time shape keeps the regime's order of gaps, so it is given the regime's error.

``score`` = gap_ks + idc_rms_log_error; the lowest wins. On a timestamp grid (BurstGPT 1 s,
Mooncake 3 s) the gap shape below the grid is not observed, so only dispersion is scored and
the real-time shape is not offered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from burstlab.fitting.arrivals import ArrivalFit
from burstlab.fitting.gaplaw import cross_ks, gap_law
from burstlab.fitting.modulation import ModulationFit, operational_gap_ks, renewal_idc_error
from burstlab.spec import ArrivalModel, EmpiricalDist, GapShape


@dataclass
class ArrivalChoice:
    """The audit of the arrival-model choice: one row per candidate, and the winner."""

    candidates: pl.DataFrame  # model, gap_shape, gap_ks, idc_rms_log_error, score, chosen
    model: ArrivalModel
    gap_shape: GapShape
    gap_law: EmpiricalDist | None

    def note(self) -> str:
        """One line for the spec's notes: every candidate's score, the chosen one first."""
        parts = []
        for r in self.candidates.sort("score", nulls_last=True).iter_rows(named=True):
            ks = "-" if r["gap_ks"] is None else f"{r['gap_ks']:.3f}"
            idc = "n/a" if r["idc_rms_log_error"] is None else f"{r['idc_rms_log_error']:.3f}"
            parts.append(f"{r['model']}/{r['gap_shape']} gap KS {ks} + IDC error {idc}")
        return f"arrival model {self.model!r} ({self.gap_shape} gaps): " + "; ".join(parts)


def choose_arrival_model(
    t: np.ndarray, arrivals: ArrivalFit, mod: ModulationFit, seed: int = 0
) -> ArrivalChoice:
    """Score renewal, modulated/operational and modulated/real-time on the trace `t` (sorted
    arrival seconds, the training rows) and pick the lowest gap KS + dispersion error."""
    gridded = arrivals.resolution.resolution_s is not None
    best = arrivals.best
    ren_ks = best.diagnostics.ks if best.diagnostics else None
    rows = [
        _row("renewal", "-", None if gridded else ren_ks, renewal_idc_error(mod, best, seed)),
        _row(
            "modulated",
            "operational",
            None if gridded else operational_gap_ks(mod, t, seed),
            mod.chosen.idc_rms_log_error,
        ),
    ]
    law = None if gridded else gap_law(np.diff(t))
    law_ks = None if law is None else cross_ks(t)
    if law_ks is not None:
        rows.append(_row("modulated", "real-time", law_ks, mod.chosen.idc_rms_log_error))
    scores = [r["score"] for r in rows]
    pick = min((i for i, s in enumerate(scores) if s is not None), key=lambda i: (scores[i], i))
    for i, r in enumerate(rows):
        r["chosen"] = i == pick
    table = pl.DataFrame(
        rows,
        schema={
            "model": pl.String,
            "gap_shape": pl.String,
            "gap_ks": pl.Float64,
            "idc_rms_log_error": pl.Float64,
            "score": pl.Float64,
            "chosen": pl.Boolean,
        },
    )
    shape = rows[pick]["gap_shape"]
    return ArrivalChoice(
        table,
        rows[pick]["model"],
        "operational" if shape == "-" else shape,
        law,
    )


def _row(model: str, shape: str, ks: float | None, idc: float | None) -> dict:
    """A candidate row; without a dispersion error it cannot be scored (never chosen), and
    on a grid (ks None for every candidate) the score is the dispersion error alone."""
    score = None if idc is None else idc + (ks or 0.0)
    return {
        "model": model,
        "gap_shape": shape,
        "gap_ks": ks,
        "idc_rms_log_error": idc,
        "score": score,
        "chosen": False,
    }
