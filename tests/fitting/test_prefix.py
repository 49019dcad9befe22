"""Prefix sharing fitted from hash_ids: exact statistics on a hand-written table, the spec's
prefix fields round-trip, and bad prefix fields are SpecErrors naming the field path."""

from __future__ import annotations

import copy
import json

import numpy as np
import polars as pl
import pytest

from burstlab import fitting
from burstlab.errors import SpecError
from burstlab.fitting.prefix import (
    MAX_GAP_WEIGHT,
    block_bins,
    fit_prefix,
    observable_weights,
    reuse_table,
)
from burstlab.spec import PointMass, WorkloadSpec
from burstlab.traces import sample_frame


def hand_written_table() -> pl.DataFrame:
    """HAND-WRITTEN FIXTURE (not real data). Five requests, rows deliberately out of arrival
    order (the fit sorts by arrival, ties in row order):

    | req | t (s) | hash_ids      | reused (earlier request used it)      | leading shared |
    |-----|-------|---------------|---------------------------------------|----------------|
    | r0  | 0     | [1, 2, 3]     | none                                  | 0              |
    | r1  | 1     | [1, 2, 4]     | 1 (r0), 2 (r0)                        | 2              |
    | r2  | 3     | [1, 5]        | 1 (last used by r1)                   | 1              |
    | r3  | 6     | [1, 2, 4, 6]  | 1 (r2), 2 (r1), 4 (r1)                | 3              |
    | r4  | 6     | [7, 1]        | 1 (r3) — not leading                  | 0              |

    14 block occurrences, 7 reused → hit rate 0.5. Leading shared blocks 0, 2, 1, 3, 0 (mean
    1.2); as fractions 0, 2/3, 1/2, 3/4, 0 (mean 23/60). Reuse distances in requests
    1, 1 | 1 | 1, 2, 2 | 1 and in seconds 1, 1 | 2 | 3, 5, 5 | 0. Parent gaps (previous use
    of the deepest shared block): r1 → block 2, r0: 1 s; r2 → block 1, r1: 2 s; r3 → block 4,
    r1: 5 s."""
    rows = [  # (arrival_s, hash_ids), r2 and r1 swapped in the table
        (0.0, [1, 2, 3]),
        (3.0, [1, 5]),
        (1.0, [1, 2, 4]),
        (6.0, [1, 2, 4, 6]),
        (6.0, [7, 1]),
    ]
    return pl.DataFrame(
        {"arrival_s": [r[0] for r in rows], "hash_ids": [r[1] for r in rows]},
        schema={"arrival_s": pl.Float64, "hash_ids": pl.List(pl.Int64)},
    )


def test_hand_written_table_statistics():
    requests, blocks = reuse_table(hand_written_table())  # type: ignore[misc]
    assert requests["arrival_s"].to_list() == [0.0, 1.0, 3.0, 6.0, 6.0]
    assert requests["blocks"].to_list() == [3, 3, 2, 4, 2]
    assert requests["shared"].to_list() == [0, 2, 1, 3, 0]
    assert requests["parent_gap_s"].to_list() == [None, 1.0, 2.0, 5.0, None]
    reused = blocks.filter(pl.col("reused"))
    assert reused["distance_requests"].to_list() == [1, 1, 1, 1, 2, 2, 1]
    assert reused["distance_s"].to_list() == [1.0, 1.0, 2.0, 3.0, 5.0, 5.0, 0.0]

    p = fit_prefix(hand_written_table())
    assert p is not None
    assert p.hit_rate == 0.5
    assert p.requests == 5
    assert p.shared_fraction_mean == pytest.approx(23 / 60)
    assert p.shared_prefix_blocks is not None and p.shared_prefix_blocks.mean == 1.2
    assert p.shared_prefix_blocks.empirical.point_masses == [PointMass(0.0, 0.4)]
    # five requests: one depth bin and one gap bin hold everything
    assert p.depth is not None and len(p.depth) == 1
    (d,) = p.depth
    assert (d.min_blocks, d.requests) == (1, 5) and d.max_blocks > 4
    assert d.fraction.point_masses == [PointMass(0.0, 0.4)]  # no request fully shared
    assert sum(d.fraction.probs) == pytest.approx(0.6)
    assert p.reuse_gap is not None and len(p.reuse_gap) == 1
    (g,) = p.reuse_gap
    assert (g.min_blocks, g.requests) == (1, 3)
    assert g.gap_s.point_masses == []  # gaps 1, 2, 5 s: none at 0
    assert sum(g.gap_s.probs) == pytest.approx(1.0)
    assert float(g.gap_s.cdf(1.5)) == pytest.approx(1 / 3, abs=1e-9)
    assert float(g.gap_s.cdf(4.0)) == pytest.approx(2 / 3, abs=1e-9)
    # block-level reuse distances: 5 of 7 at 1 request, all in [1, 2]; seconds 0 … 5
    assert p.reuse_distance_requests is not None and p.reuse_distance_s is not None
    assert float(p.reuse_distance_requests.cdf(1.5)) == pytest.approx(5 / 7)
    assert p.reuse_distance_s.point_masses == [PointMass(0.0, pytest.approx(1 / 7))]


def test_observable_weights_by_hand():
    """History 0, 1, 2, 3 s: a gap of 0 is seen from every request (weight 1), of 2 s from
    half of them (2), of 3.5 s from none (capped)."""
    w = observable_weights(np.array([0.0, 2.0, 3.5]), np.array([0.0, 1.0, 2.0, 3.0]))
    assert w.tolist() == [1.0, 2.0, MAX_GAP_WEIGHT]


def test_block_bins_merge_sparse_ones():
    """Half-octave edges 1, 2, 4, 5, 8, 11, …: [1, 2) holds 60, [2, 4) 70, then [4, 5) and
    [5, 8) nothing, so they merge on until [8, 11) brings 55."""
    assert block_bins(np.array([1] * 60 + [2] * 60 + [3] * 10 + [9] * 55)) == [
        (1, 2),
        (2, 4),
        (4, 11),
    ]
    assert block_bins(np.array([5, 6, 7])) == [(1, 8)]  # too few anywhere: one bin


def test_no_hash_ids_no_prefix():
    assert fit_prefix(pl.DataFrame({"arrival_s": [0.0, 1.0]})) is None
    empty = pl.DataFrame(
        {"arrival_s": [0.0, 1.0], "hash_ids": [[], []]},
        schema={"arrival_s": pl.Float64, "hash_ids": pl.List(pl.Int64)},
    )
    assert fit_prefix(empty) is None


def test_nothing_shared_fits_all_zero_depths():
    frame = pl.DataFrame(
        {"arrival_s": [0.0, 1.0, 2.0], "hash_ids": [[1, 2], [3], [4, 5, 6]]},
        schema={"arrival_s": pl.Float64, "hash_ids": pl.List(pl.Int64)},
    )
    p = fit_prefix(frame)
    assert p is not None and p.hit_rate == 0.0 and p.generative()
    assert p.depth is not None and p.depth[0].fraction.point_masses == [PointMass(0.0, 1.0)]


# ------------------------------------------------------------------ the real Mooncake sample


@pytest.fixture(scope="module")
def mooncake_spec() -> WorkloadSpec:
    return fitting.fit(sample_frame("mooncake-conversation")).spec


def test_mooncake_prefix_is_fitted_into_the_spec(mooncake_spec):
    """Measured on the 3,000-request excerpt (docs/fitting.md has the numbers)."""
    p = mooncake_spec.prefix
    assert p is not None and p.generative() and p.requests == 3000
    assert p.hit_rate == pytest.approx(0.3142, abs=1e-4)
    assert p.shared_fraction_mean == pytest.approx(0.3369, abs=1e-4)
    # every request but the first shares at least the one-block system prompt, at gap ≈ 0 s;
    # deeper shares continue an earlier turn, ~100 s back
    first, *deeper = p.reuse_gap or []
    assert (first.min_blocks, first.max_blocks) == (1, 2)
    assert first.gap_s.point_masses[0].value == 0.0 and first.gap_s.point_masses[0].prob > 0.85
    assert all(60 < b.gap_s.mean() < 400 for b in deeper)
    assert any("block reuse 31.4%" in n for n in mooncake_spec.notes)


def test_spec_with_prefix_round_trips_exactly(mooncake_spec, tmp_path):
    text = mooncake_spec.to_json()
    again = WorkloadSpec.from_json(text)
    assert again == mooncake_spec
    assert again.to_json() == text
    path = mooncake_spec.save(tmp_path / "spec.json")
    assert WorkloadSpec.load(path) == mooncake_spec
    assert json.loads(text)["prefix"]["depth"][0]["min_blocks"] == 1


def _bad(doc: dict, edit, match: str) -> None:
    d = copy.deepcopy(doc)
    edit(d["prefix"])
    with pytest.raises(SpecError, match=match):
        WorkloadSpec.from_dict(d)


def test_bad_prefix_fields_name_the_field_path(mooncake_spec):
    doc = mooncake_spec.to_dict()
    _bad(doc, lambda p: p.update(hit_rate=1.5), r"spec\.prefix\.hit_rate: must be in \[0, 1\]")
    _bad(doc, lambda p: p.update(block_tokens=0), r"spec\.prefix\.block_tokens: must be ≥ 1")
    _bad(doc, lambda p: p.update(hit_rate="x"), r"spec\.prefix\.hit_rate: expected a number")
    _bad(doc, lambda p: p.update(hit_rate=float("nan")), r"spec\.prefix\.hit_rate: expected a fin")
    _bad(
        doc,
        lambda p: p.update(shared_fraction_mean=-0.1),
        r"spec\.prefix\.shared_fraction_mean: must be in \[0, 1\]",
    )
    _bad(doc, lambda p: p.update(reuse_gap=None), r"spec\.prefix\.reuse_gap: depth and reuse_gap")
    _bad(doc, lambda p: p.update(depth=[]), r"spec\.prefix\.depth: needs at least one bin")
    _bad(
        doc,
        lambda p: p["depth"][1].update(min_blocks=p["depth"][1]["min_blocks"] - 1),
        r"spec\.prefix\.depth\[1\]\.min_blocks: bins must be contiguous",
    )
    _bad(
        doc,
        lambda p: p["depth"][0].update(max_blocks=1),
        r"spec\.prefix\.depth\[0\]\.max_blocks: must be > min_blocks",
    )
    _bad(
        doc,
        lambda p: p["depth"][0]["fraction"]["edges"].__setitem__(-1, 1.5),
        r"spec\.prefix\.depth\[0\]\.fraction\.edges: a shared fraction is at most 1",
    )
    _bad(
        doc,
        lambda p: p["depth"][2]["fraction"]["point_masses"][0].update(value=2.0),
        r"spec\.prefix\.depth\[2\]\.fraction\.point_masses\[0\]\.value: must be ≤ 1",
    )
    _bad(
        doc,
        lambda p: p["reuse_gap"][0]["gap_s"]["probs"].__setitem__(0, -0.5),
        r"spec\.prefix\.reuse_gap\[0\]\.gap_s \(bins \+ masses\): probabilities must be ≥ 0",
    )
    _bad(
        doc,
        lambda p: p["reuse_gap"][0].update(requests=-1),
        r"spec\.prefix\.reuse_gap\[0\]\.requests: must be ≥ 0",
    )
    _bad(
        doc,
        lambda p: p["reuse_gap"][0].update(colour="red"),
        r"spec\.prefix\.reuse_gap\[0\]: unknown field\(s\) \['colour'\]",
    )
    _bad(
        doc,
        lambda p: p["reuse_distance_s"].update(
            edges=[2.0, 1.0, *p["reuse_distance_s"]["edges"][2:]]
        ),
        r"spec\.prefix\.reuse_distance_s\.edges: edges must be strictly increasing",
    )


def test_old_prefix_documents_still_read(mooncake_spec):
    """A spec saved before the prefix model existed (four fields) still loads; it has no
    generative model."""
    doc = mooncake_spec.to_dict()
    doc["prefix"] = {k: doc["prefix"][k] for k in ("block_tokens", "hit_rate", "popularity_zipf_s")}
    spec = WorkloadSpec.from_dict(doc)
    assert spec.prefix is not None and not spec.prefix.generative()
