"""hash_ids generated from a fitted prefix model: structure, determinism, the real Mooncake
sample's hit rate and depth reproduced, and the fidelity suite's prefix metrics."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl
import pytest

from burstlab import fitting
from burstlab.errors import UsageError
from burstlab.fitting.prefix import fit_prefix, reuse_table
from burstlab.spec import GroupSpec, PrefixSpec, WorkloadSpec
from burstlab.synth import prefix as P
from burstlab.synth import suite as F
from burstlab.synth.generate import generate
from burstlab.synth.holdout import validate
from burstlab.traces import sample_frame

MOONCAKE = "mooncake-conversation"


@pytest.fixture(scope="module")
def real() -> pl.DataFrame:
    return sample_frame(MOONCAKE)


@pytest.fixture(scope="module")
def spec(real) -> WorkloadSpec:
    return fitting.fit(real).spec


def hand_written_table() -> pl.DataFrame:
    """HAND-WRITTEN FIXTURE (not real data), the one of tests/fitting/test_prefix.py: five
    requests at 0, 3, 1, 6, 6 s (rows out of order) with ids [1,2,3], [1,5], [1,2,4],
    [1,2,4,6], [7,1]. In arrival order 7 of 14 block occurrences were used by an earlier
    request; distances in requests 1,1 | 1 | 1,2,2 | 1, in seconds 1,1 | 2 | 3,5,5 | 0."""
    return pl.DataFrame(
        {
            "arrival_s": [0.0, 3.0, 1.0, 6.0, 6.0],
            "hash_ids": [[1, 2, 3], [1, 5], [1, 2, 4], [1, 2, 4, 6], [7, 1]],
        },
        schema={"arrival_s": pl.Float64, "hash_ids": pl.List(pl.Int64)},
    )


def test_block_reuse_on_the_hand_written_table():
    rate, dr, ds = P.block_reuse(hand_written_table())  # type: ignore[misc]
    assert rate == 0.5
    assert sorted(dr.tolist()) == [1, 1, 1, 1, 1, 2, 2]
    assert sorted(ds.tolist()) == [0.0, 1.0, 1.0, 2.0, 3.0, 5.0, 5.0]
    # on a 3-second grid, 1 s → 0 s … 5 s → 3 s (6 → 6, 3 → 3, 1 → 0)
    _, _, ds3 = P.block_reuse(hand_written_table(), resolution_s=3.0)  # type: ignore[misc]
    assert sorted(ds3.tolist()) == [0.0, 0.0, 0.0, 3.0, 3.0, 6.0, 6.0]
    assert P.block_reuse(hand_written_table().drop("hash_ids")) is None


def test_resolve_by_hand():
    """r0 holds 2 fresh blocks; r1 reuses r0's first 2 and adds 1; r2 reuses r1's first 1
    (which is r0's) and adds 1 → [[0, 1], [0, 1, 2], [0, 3]]; ids from start_id."""
    ids = P._resolve(np.array([2, 3, 2]), np.array([-1, 0, 1]), np.array([0, 2, 1]), 10)
    assert ids.to_list() == [[10, 11], [10, 11, 12], [10, 13]]


def test_generated_ids_have_the_mooncake_structure(spec):
    w = generate(spec, duration_s=600, seed=3)
    f = w.frame
    assert f["hash_ids"].null_count() == 0
    # ⌈input / 512⌉ ids per request
    assert (f["hash_ids"].list.len() == (f["input_tokens"] + 511) // 512).all()
    # reuse is always a leading run (a prefix), as in the real trace
    requests, blocks = reuse_table(f)  # type: ignore[misc]
    per_req = blocks.group_by("req").agg(pl.col("reused").sum().alias("n")).sort("req")
    assert per_req["n"].to_list() == requests["shared"].to_list()
    # ids are numbered in order of first use: 0, 1, 2, … with no gap
    flat = f["hash_ids"].explode().to_numpy()
    first = np.unique(flat, return_index=True)[1]
    assert np.array_equal(flat[np.sort(first)], np.arange(first.size))
    assert w.diagnostics["prefix_blocks"] == flat.size


def test_same_seed_same_ids_and_the_other_columns_untouched(spec):
    a = generate(spec, duration_s=300, seed=5).frame
    b = generate(spec, duration_s=300, seed=5).frame
    c = generate(spec, duration_s=300, seed=6).frame
    assert a.equals(b)
    assert not a["hash_ids"].equals(c["hash_ids"])
    # the prefix draws have their own stream: without the model the rest is identical
    plain = generate(dataclasses.replace(spec, prefix=None), duration_s=300, seed=5).frame
    assert plain.drop("hash_ids", "source").equals(a.drop("hash_ids", "source"))  # source: sha


def test_real_hit_rate_and_depth_are_reproduced(spec, real):
    """Tolerance fixed up front from the real excerpt itself: its two halves (each measured on
    its own) differ by 7 % in hit rate (0.260 vs 0.243) and 14 % in mean shared blocks
    (7.26 vs 6.30), 0 % in mean shared fraction. So over the same 987 s, the mean of three
    seeds must be within 15 % of the real hit rate and mean shared blocks, 10 % of the mean
    shared fraction. (Measured when written: 0.30 vs 0.314, 8.0 vs 8.44, 0.34 vs 0.337.)"""
    p = spec.prefix
    fits = [fit_prefix(generate(spec, duration_s=987, seed=s).frame) for s in range(3)]
    assert all(q is not None for q in fits)
    hit = np.mean([q.hit_rate for q in fits])  # type: ignore[union-attr]
    frac = np.mean([q.shared_fraction_mean for q in fits])  # type: ignore[union-attr]
    blocks = np.mean([q.shared_prefix_blocks.mean for q in fits])  # type: ignore[union-attr]
    assert hit == pytest.approx(p.hit_rate, rel=0.15)
    assert frac == pytest.approx(p.shared_fraction_mean, rel=0.10)
    assert blocks == pytest.approx(p.shared_prefix_blocks.mean, rel=0.15)


def test_no_prefix_model_no_hash_ids(spec):
    azure = fitting.fit(sample_frame("azure-llm-2023-code")).spec
    assert azure.prefix is None
    assert generate(azure, duration_s=120, seed=0).frame["hash_ids"].null_count() > 0
    for prefix in (None, PrefixSpec(hit_rate=0.3)):  # none, or one without depth/reuse_gap
        f = generate(dataclasses.replace(spec, prefix=prefix), duration_s=120, seed=0).frame
        assert f["hash_ids"].null_count() == f.height


def test_groups_draw_their_own_ids(spec):
    """Each group's requests get ids from the group's model; no id is shared across groups."""
    half = dataclasses.replace(spec, groups=None)
    mixed = dataclasses.replace(
        spec,
        groups=[GroupSpec("a", 0.5, half, key="model"), GroupSpec("b", 0.5, half, key="model")],
    )
    f = generate(mixed, duration_s=300, seed=1).frame
    assert f["hash_ids"].null_count() == 0
    ids = {g: set(f.filter(pl.col("model") == g)["hash_ids"].explode()) for g in ("a", "b")}
    assert ids["a"] and ids["b"] and not ids["a"] & ids["b"]


def test_too_many_block_ids_is_a_usage_error(spec, monkeypatch):
    monkeypatch.setattr(P, "MAX_BLOCK_IDS", 1000)
    with pytest.raises(UsageError, match="prefix-block ids") as err:
        generate(spec, duration_s=300, seed=0)
    assert err.value.param == "duration_s"


# ------------------------------------------------------------------ the fidelity suite


def test_prefix_metrics_identical_missing_and_absent(real):
    cmp = F.compare(real, real, resolution_s=3.0).values
    assert cmp["block_reuse_ratio"] == 1.0
    assert cmp["reuse_distance_ks"] == 0.0 and cmp["reuse_distance_s_ks"] == 0.0
    no_ids = real.with_columns(pl.lit(None, dtype=pl.List(pl.Int64)).alias("hash_ids"))
    cmp = F.compare(real, no_ids, resolution_s=3.0).values
    assert cmp["block_reuse_ratio"] == 0.0  # the synthetic load reuses nothing
    assert math.isnan(cmp["reuse_distance_ks"])
    assert not set(F.PREFIX_METRICS) & set(F.compare(no_ids, real).values)  # real has none


def test_fidelity_judges_prefix_metrics_only_with_real_ids(real):
    train, held = F.split_holdout(real, 687.0, 300.0)
    no_ids = held.with_columns(pl.lit(None, dtype=pl.List(pl.Int64)).alias("hash_ids"))
    res = F.fidelity(held, {"same": held, "no_ids": no_ids}, train=train, resolution_s=3.0)
    rows = res.verdicts.filter(pl.col("metric").is_in(list(F.PREFIX_METRICS)))
    assert rows.height == 2 * len(F.PREFIX_METRICS)
    assert rows.filter(pl.col("generator") == "same")["within"].all()
    assert not rows.filter(pl.col("generator") == "no_ids")["within"].any()
    wins = res.wins("same", "no_ids")
    assert all(wins[m] for m in F.PREFIX_METRICS)
    assert "block_reuse_ratio" in "\n".join(F.summary_lines(res))


@pytest.mark.parametrize(
    ("train_s", "heldout_s", "step_s"),
    [(687.0, 300.0, 75.0), pytest.param(587.0, 400.0, 50.0, marks=pytest.mark.slow)],
)
def test_mooncake_holdout_prefix_metrics_inside_the_real_envelope(real, train_s, heldout_s, step_s):
    """The rule, fixed before the numbers were seen: the suite's envelope (25 % slack), inside
    in ≥ 3 of 5 seeds (as tests/synth/test_holdout_azure.py asks on Azure). docs/synth.md
    has the numbers; the baselines, which carry no ids, are outside in every seed."""
    h = validate(
        real,
        lambda train: fitting.fit(train).spec,
        train_s=train_s,
        heldout_s=heldout_s,
        step_s=step_s,
    )
    shares = h.verdicts()
    assert all(shares[m] >= 0.6 for m in F.PREFIX_METRICS), shares
    for baseline in ("poisson", "gamma", "burstgpt_demo"):
        assert all(h.verdicts(baseline)[m] == 0.0 for m in F.PREFIX_METRICS)
        assert all(h.beats("burstlab", baseline)[m] for m in F.PREFIX_METRICS)
