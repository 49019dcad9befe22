"""Multi-turn sessions: accumulated context, think times, Mooncake-style prefix ids."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from synth_specs import session_spec

from burstlab.synth.generate import generate
from burstlab.synth.sessions import SystemPrompts, session_hash_ids


def test_session_hash_ids_share_full_blocks_only():
    # one session: turn inputs 1000, 1600 tokens → blocks [0, P0], [0, 1, 2, P1]
    ids = session_hash_ids(np.array([0, 0, 1]), np.array([1000, 1600, 512]))
    a, b, c = ids.to_list()
    assert len(a) == 2 and len(b) == 4 and len(c) == 1
    assert a[0] == b[0]  # the full first block is shared
    assert a[1] != b[1]  # a's second block was partial: its content changed
    assert len(set(b)) == 4
    assert not set(c) & (set(a) | set(b))  # other session: nothing shared


def test_system_prompt_pool_shares_across_sessions():
    ids = session_hash_ids(
        np.array([0, 1, 2]), np.array([2048, 2048, 2048]), np.array([0, 0, 1]), prompt_blocks=2
    ).to_list()
    assert ids[0][:2] == ids[1][:2]  # same prompt
    assert ids[0][2:] != ids[1][2:]  # own conversation after it
    assert not set(ids[2][:2]) & set(ids[0])


def test_sessions_accumulate_context_and_think():
    spec = session_spec()
    w = generate(spec, duration_s=3000, seed=4, sessions=True)
    f = w.frame
    assert f["session_id"].null_count() == 0
    assert w.diagnostics["sessions"] > 100
    # rate ≈ spec rate (5 req/s) — session starts are scaled by the mean turns
    assert f.height / 3000 == pytest.approx(5.0, rel=0.15)
    per = f.group_by("session_id", maintain_order=True).agg(
        pl.col("arrival_s"), pl.col("input_tokens"), pl.col("output_tokens"), pl.col("hash_ids")
    )
    multi = per.filter(pl.col("arrival_s").list.len() >= 3)
    assert multi.height > 50
    gaps, grow_ok, share_ok = [], 0, 0
    for row in multi.iter_rows(named=True):
        t, inp, out, ids = (
            row["arrival_s"],
            row["input_tokens"],
            row["output_tokens"],
            row["hash_ids"],
        )
        gaps += list(np.diff(t))
        # input_k ≥ input_{k−1} + output_{k−1}: the context is carried forward
        grow_ok += all(inp[k] >= inp[k - 1] + out[k - 1] for k in range(1, len(inp)))
        full = inp[0] // 512
        share_ok += ids[1][:full] == ids[0][:full]
    assert grow_ok == multi.height
    assert share_ok == multi.height
    assert np.mean(gaps) == pytest.approx(30.0, rel=0.15)  # exponential think time, mean 30 s


def test_sessions_seeded_and_prompts():
    spec = session_spec()
    a = generate(spec, duration_s=600, seed=1, sessions=True).frame
    b = generate(spec, duration_s=600, seed=1, sessions=True).frame
    assert a.equals(b)
    p = generate(
        spec, duration_s=600, seed=1, sessions=True, prompts=SystemPrompts(3, 2, 1.2)
    ).frame
    firsts = p["hash_ids"].list.head(2)
    assert firsts.n_unique() <= 3  # every request starts with one of 3 system prompts


def test_sessions_use_the_fitted_new_token_marginal():
    """With `sessions.new_tokens` in the spec, each later turn adds exactly a draw from it."""
    from burstlab.fitting.sessions import token_marginal

    spec = session_spec()
    spec.sessions.new_tokens = token_marginal(np.random.default_rng(5).integers(50, 151, 20_000))
    f = generate(spec, duration_s=3000, seed=6, sessions=True).frame
    d = f.sort("session_id", "arrival_s").with_columns(
        same=pl.col("session_id") == pl.col("session_id").shift(1),
        carried=(pl.col("input_tokens") + pl.col("output_tokens")).shift(1),
    )
    first = d.filter(~pl.col("same").fill_null(False))["input_tokens"]
    later = d.filter(pl.col("same").fill_null(False))
    if spec.lengths.context_limit:  # turns clipped by the context limit add less
        later = later.filter(
            pl.col("input_tokens") + pl.col("output_tokens") < spec.lengths.context_limit
        )
    added = (later["input_tokens"] - later["carried"]).to_numpy()
    assert added.size > 1000
    assert added.min() >= 50 and added.max() <= 150
    assert added.mean() == pytest.approx(100.0, abs=2.0)
    assert first.min() >= 50 and first.max() <= 150
