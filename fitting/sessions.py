"""Multi-turn sessions (sources with session ids, e.g. BurstGPT v3): turns per session and the
think time between consecutive turns' arrivals.

Turns per session get the empirical integer model plus a geometric fit (the memoryless
"another turn with probability 1 − p" baseline); think times get the same renewal families as
inter-arrival gaps (seconds), chosen by BIC among mean-preserving fits. When the inputs carry
the conversation history (turn k's input ≥ turn k−1's input + output), the tokens a user adds
per turn get their own empirical marginal, so synth need not guess them from the input marginal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from burstlab.fitting.arrivals import MEAN_PRESERVING, fit_positive
from burstlab.fitting.lengths import empirical_model
from burstlab.fitting.select import Selection, information
from burstlab.spec import FamilyFit, FitDiagnostics, Marginal, SessionSpec


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
    new_tokens: np.ndarray | None = None  # per-turn new tokens, when the inputs carry history
    history_share: float | None = None  # share of later turns whose input ≥ previous in + out

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
            new_tokens=None if self.new_tokens is None else token_marginal(self.new_tokens),
        )


#: Later turns must carry the history (input ≥ previous input + output) this often for the
#: per-turn new-token marginal to be measured; otherwise the source logs something else.
HISTORY_SHARE = 0.9


def token_marginal(tokens: np.ndarray) -> Marginal:
    """The empirical integer marginal of a token count (≥ 1), as the length models use."""
    kv, w = np.unique(np.maximum(tokens, 1), return_counts=True)
    emp = empirical_model(kv.astype(float), w.astype(float), float(w.sum()), [])
    return Marginal(
        empirical=emp, min=float(kv.min()), max=float(kv.max()), mean=float(tokens.mean())
    )


def new_tokens_per_turn(df: pl.DataFrame) -> tuple[np.ndarray | None, float | None]:
    """Tokens added per turn, from rows sorted by session and arrival: the first turn's input,
    then input − (previous input + previous output). Measured only when at least
    `HISTORY_SHARE` of the later turns carry the history (difference ≥ 0); negative
    differences of the rest are clipped to 1 token. Returns (tokens, history share)."""
    if not {"input_tokens", "output_tokens"} <= set(df.columns):
        return None, None
    d = df.with_columns(
        first=pl.col("session_id") != pl.col("session_id").shift(1),
        carried=(pl.col("input_tokens") + pl.col("output_tokens")).shift(1),
    )
    later = d.filter(~pl.col("first").fill_null(True))
    if later.is_empty():
        return None, None
    diff = (later["input_tokens"] - later["carried"]).to_numpy().astype(np.float64)
    share = float((diff >= 0).mean())
    if share < HISTORY_SHARE:
        return None, share
    first = d.filter(pl.col("first").fill_null(True))["input_tokens"].to_numpy()
    return np.concatenate([first, np.maximum(diff, 1.0)]), share


def fit_sessions(frame: pl.DataFrame | pl.LazyFrame) -> SessionFit | None:
    """Sessions of a canonical ``requests`` table; None when it has no session ids."""
    lf = frame.lazy()
    if "session_id" not in lf.collect_schema().names():
        return None
    names = lf.collect_schema().names()
    cols = ["session_id", "arrival_s"] + [
        c for c in ("input_tokens", "output_tokens") if c in names
    ]
    df = lf.select(cols).collect()
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
    new, history = new_tokens_per_turn(df)
    return SessionFit(
        sessions=int(turns.size),
        requests_in_sessions=int(df.height),
        request_share=df.height / total,
        turns=turns,
        turns_geometric=geom,
        think_times_s=think,
        think=sel,
        new_tokens=new,
        history_share=history,
    )
