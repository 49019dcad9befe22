"""Multi-turn sessions (sources with session ids, e.g. BurstGPT v3): turns per session and the
think time between consecutive turns' arrivals.

Turns per session get the empirical integer model plus a geometric fit (the memoryless
"another turn with probability 1 − p" baseline); think times get the same renewal families as
inter-arrival gaps (seconds), chosen by BIC among mean-preserving fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from burstlab.fitting.arrivals import MEAN_PRESERVING, fit_positive
from burstlab.fitting.lengths import empirical_model
from burstlab.fitting.select import Selection, information
from burstlab.fitting.spec import FamilyFit, FitDiagnostics, Marginal, SessionSpec


@dataclass
class SessionFit:
    """Session structure of a trace, with the think-time model selection."""

    sessions: int
    requests_in_sessions: int
    request_share: float
    turns: np.ndarray  # turns per session
    turns_geometric: FamilyFit
    think_times_s: np.ndarray
    think: Selection | None

    def table(self) -> pl.DataFrame:
        """Think-time candidates (loglik, AIC, BIC, KS, AD, n)."""
        return self.think.table() if self.think else pl.DataFrame()

    def to_spec(self) -> SessionSpec:
        kv, w = np.unique(self.turns, return_counts=True)
        emp = empirical_model(kv.astype(float), w.astype(float), float(w.sum()), [])
        marginal = Marginal(
            empirical=emp,
            min=float(kv.min()),
            max=float(kv.max()),
            mean=float(self.turns.mean()),
            chosen=self.turns_geometric,
            candidates=[self.turns_geometric],
        )
        return SessionSpec(
            sessions=self.sessions,
            turns=marginal,
            think_time=self.think.best if self.think else None,
            think_time_empirical=None,
            request_share=self.request_share,
        )


def fit_sessions(frame: pl.DataFrame | pl.LazyFrame) -> SessionFit | None:
    """Sessions of a canonical ``requests`` table; None when it has no session ids."""
    lf = frame.lazy()
    if "session_id" not in lf.collect_schema().names():
        return None
    df = lf.select("session_id", "arrival_s").collect()
    total = df.height
    df = df.drop_nulls("session_id")
    if df.is_empty():
        return None
    df = df.sort("session_id", "arrival_s")
    turns = df.group_by("session_id").len()["len"].to_numpy()
    think = (
        df.with_columns(pl.col("arrival_s").diff().over("session_id").alias("think"))["think"]
        .drop_nulls()
        .to_numpy()
    )
    think = think[think > 0]
    p = 1.0 / float(turns.mean())
    ll = float(np.sum(np.log(p) + (turns - 1) * np.log1p(-p))) if p < 1 else 0.0
    aic, bic = information(ll, 1, turns.size)
    geom = FamilyFit(
        "geometric",
        {"p": min(p, 1.0)},
        "mle",
        FitDiagnostics(int(turns.size), 1, ll, aic, bic),
        stderr={"p": math.sqrt(p * p * (1 - p) / turns.size)},
    )
    sel = Selection(fit_positive(think), "bic", MEAN_PRESERVING) if think.size >= 10 else None
    return SessionFit(
        sessions=int(turns.size),
        requests_in_sessions=int(df.height),
        request_share=df.height / total,
        turns=turns,
        turns_geometric=geom,
        think_times_s=think,
        think=sel,
    )
