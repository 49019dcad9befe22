"""Multi-turn conversations with think time and prefix-block ids (Mooncake style).

A session is a chain of turns: turn k arrives a think time after turn k−1 (arrival to
arrival, as fitted), and its input is the whole conversation so far plus new tokens:
input_k = Σ_{i≤k} new_i + Σ_{i<k} output_i. That is what a chat front-end sends, and what
makes prefix caches matter.

`hash_ids` follow Mooncake: one id per 512-token block of the input. A session's token stream
only grows, so its j-th *full* block is the same in every later turn and keeps its id
(session base + j); a trailing partial block gets a fresh id (its content changes when the
stream grows). Optionally the first blocks of every session come from a shared pool of system
prompts drawn by Zipf popularity, so different sessions share a prefix too.

Session starts follow the spec's arrival process, scaled so that starts × mean turns give the
requested request rate; so busy periods start more conversations, as in the source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import polars as pl
import pyarrow as pa

from burstlab.errors import SpecError, UsageError
from burstlab.spec import (
    EmpiricalDist,
    LengthSpec,
    Marginal,
    PointMass,
    SessionSpec,
    WorkloadSpec,
)
from burstlab.synth.arrivals import arrival_times
from burstlab.synth.lengths import copula_uniforms

BLOCK_TOKENS = 512
#: At most this many prefix-block ids per session workload (8 bytes each: 2 GB).
MAX_BLOCK_IDS = 1 << 28
#: Token counts are int32 in the canonical requests table.
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class SystemPrompts:
    """A pool of shared leading prefixes: `count` prompts of `blocks` full blocks each; a
    session picks prompt i with probability ∝ (i+1)^−zipf_s."""

    count: int = 0
    blocks: int = 0
    zipf_s: float = 1.0


class SessionColumns(TypedDict):
    """The columns of a session workload (`session_requests`), sorted by arrival."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    session_id: pl.Series
    hash_ids: pl.Series


def _segment_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum that restarts at each index in `starts` (sorted, includes 0)."""
    total = np.cumsum(values)
    before = np.concatenate([[0], total])[starts]
    lengths = np.diff(np.concatenate([starts, [values.size]]))
    return total - np.repeat(before, lengths)


def think_times(rng: np.random.Generator, sessions: SessionSpec, n: int) -> np.ndarray:
    """`n` think times (seconds between consecutive turns' arrivals)."""
    if sessions.think_time is not None:
        return sessions.think_time.sample(rng, n)
    if sessions.think_time_empirical is not None:
        return sessions.think_time_empirical.ppf(rng.random(n))
    raise SpecError("sessions has neither think_time nor think_time_empirical")


def session_hash_ids(
    session_index: np.ndarray,
    input_tokens: np.ndarray,
    prompt_of_session: np.ndarray | None = None,
    prompt_blocks: int = 0,
) -> pl.Series:
    """Mooncake-style block ids per request (see module docstring), as a list column.

    `session_index` (0..S−1) and `input_tokens` per request. Full block j of session s gets
    id base[s] + j; with a system-prompt pool, blocks j < prompt_blocks are the chosen
    prompt's ids instead. Trailing partial blocks get ids after every other id.
    """
    full = input_tokens.astype(np.int64) // BLOCK_TOKENS
    partial = (input_tokens.astype(np.int64) % BLOCK_TOKENS) > 0
    blocks = int(full.sum() + partial.sum())
    if blocks > MAX_BLOCK_IDS:
        raise UsageError(
            f"the session workload would hold {blocks:,} prefix-block ids (its inputs average "
            f"{input_tokens.mean():,.0f} tokens); at most {MAX_BLOCK_IDS:,}: generate a shorter "
            "duration_s or a lower rate_scale",
            param="duration_s",
        )
    n_sess = int(session_index.max()) + 1 if session_index.size else 0
    span = np.zeros(n_sess, dtype=np.int64)
    np.maximum.at(span, session_index, full)
    n_prompts = 0 if prompt_of_session is None else int(prompt_of_session.max()) + 1
    prompt_ids = n_prompts * prompt_blocks
    base = prompt_ids + np.concatenate([[0], np.cumsum(span)[:-1]])
    counts = full + partial
    offsets = np.concatenate([[0], np.cumsum(counts)])
    row = np.repeat(np.arange(counts.size), counts)
    pos = np.arange(offsets[-1]) - offsets[:-1][row]
    sess = session_index[row]
    ids = base[sess] + pos
    if prompt_of_session is not None and prompt_blocks > 0:
        shared = pos < prompt_blocks
        ids[shared] = prompt_of_session[sess[shared]] * prompt_blocks + pos[shared]
    is_partial = pos == full[row]
    ids[is_partial] = prompt_ids + span.sum() + np.flatnonzero(partial)
    return pl.Series("hash_ids", pa.ListArray.from_arrays(offsets.astype(np.int32), ids))


def session_requests(
    spec: WorkloadSpec,
    rng: np.random.Generator,
    duration_s: float,
    *,
    rate_scale: float = 1.0,
    new_tokens: Marginal | None = None,
    prompts: SystemPrompts | None = None,
) -> SessionColumns:
    """Columns of a session workload on [0, duration_s): arrival_s, input_tokens,
    output_tokens, session_id, hash_ids (sorted by arrival).

    `new_tokens` is the marginal of the tokens a user adds per turn; it defaults to the
    spec's fitted `sessions.new_tokens`, and without one to `new_tokens_from_input` (see there). Request rate ≈ the
    spec's rate × `rate_scale`, shared across sessions; turns beyond `duration_s` are cut.
    """
    if spec.sessions is None or spec.lengths is None:
        raise SpecError("session generation needs a spec with sessions and lengths")
    sess, lengths = spec.sessions, spec.lengths
    turn_sample = np.maximum(sess.turns.ppf(rng.random(4096)), 1.0)
    mean_turns = float(turn_sample.mean())
    starts = arrival_times(spec.arrivals, rng, duration_s, rate_scale / mean_turns)
    n_sess = starts.size
    if n_sess == 0:  # no conversation starts in so short (or so quiet) a window
        return {
            "arrival_s": np.zeros(0),
            "input_tokens": np.zeros(0, dtype=np.int32),
            "output_tokens": np.zeros(0, dtype=np.int32),
            "session_id": pl.Series("session_id", [], dtype=pl.String),
            "hash_ids": pl.Series("hash_ids", [], dtype=pl.List(pl.Int64)),
        }
    turns = np.maximum(sess.turns.ppf(rng.random(n_sess)).astype(np.int64), 1)
    first = np.concatenate([[0], np.cumsum(turns)[:-1]])
    session_index = np.repeat(np.arange(n_sess), turns)
    gaps = think_times(rng, sess, int(turns.sum()))
    gaps[first] = 0.0
    t = starts[session_index] + _segment_cumsum(gaps, first)
    new_m = new_tokens or sess.new_tokens or new_tokens_from_input(lengths, turn_sample)
    u_new, u_out = copula_uniforms(rng, lengths.dependence.copula.rho, t.size)
    new = new_m.ppf(u_new)
    out = lengths.output.ppf(u_out)
    prev_out = np.concatenate([[0.0], out[:-1]])
    prev_out[first] = 0.0
    inp = np.minimum(_segment_cumsum(new + prev_out, first), INT32_MAX)  # a canonical int32
    if lengths.context_limit:
        out = np.minimum(out, lengths.context_limit - 1)
        inp = np.minimum(inp, lengths.context_limit - out)
    prompt_of = None
    if prompts is not None and prompts.count > 0:
        w = (np.arange(prompts.count) + 1.0) ** -prompts.zipf_s
        prompt_of = np.searchsorted(np.cumsum(w) / w.sum(), rng.random(n_sess), side="right")
        prompt_of = np.minimum(prompt_of, prompts.count - 1)
        inp = np.maximum(inp, prompts.blocks * BLOCK_TOKENS + 1)
    keep = t < duration_s
    order = np.argsort(t[keep], kind="stable")
    ids = session_hash_ids(session_index, inp, prompt_of, prompts.blocks if prompts else 0)
    ids = ids.filter(pl.Series(keep))[order]
    return {
        "arrival_s": t[keep][order],
        "input_tokens": inp[keep][order].astype(np.int32),
        "output_tokens": out[keep][order].astype(np.int32),
        "session_id": pl.Series(
            "session_id", np.char.add("s", session_index[keep][order].astype(str))
        ),
        "hash_ids": ids,
    }


def new_tokens_from_input(lengths: LengthSpec, turns: np.ndarray) -> Marginal:
    """WORKAROUND (for a spec without a fitted `sessions.new_tokens`): the fitted *input* marginal
    scaled by c so that the mean input over all generated turns equals the fitted input mean.

    With T turns per session, new-token mean c·m_in and output mean m_out, the mean input per
    request is (c·m_in·E[T(T+1)/2] + m_out·E[T(T−1)/2]) / E[T]; solving for the fitted m_in
    gives c (floored at 2 %, when outputs alone already fill the context). `turns` is a sample
    of turns per session. A fitted `sessions.new_tokens` marginal would replace this."""
    t = turns.astype(np.float64)
    m_in, m_out = lengths.input.mean, lengths.output.mean
    denom = m_in * (t * (t + 1) / 2).mean()
    c = (m_in * t.mean() - m_out * (t * (t - 1) / 2).mean()) / denom if denom > 0 else 1.0
    c = max(float(c), 0.02) if math.isfinite(c) else 1.0  # inputs all 0: any c keeps them 0
    emp = lengths.input.empirical
    scaled = EmpiricalDist(
        [e * c for e in emp.edges],
        list(emp.probs),
        [PointMass(m.value * c, m.prob) for m in emp.point_masses],
    )
    return Marginal(scaled, max(1.0, lengths.input.min * c), lengths.input.max * c, m_in * c)
