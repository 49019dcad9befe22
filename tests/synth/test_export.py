"""Exports round-trip through burstlab's own ingest (traces/ adapters), row for row."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from synth_specs import make_spec

from burstlab.parquet import read_metadata
from burstlab.synth.export import export, fresh_hash_ids
from burstlab.synth.generate import generate
from burstlab.traces import ingest


@pytest.fixture
def workload():
    return generate(make_spec(rho=0.4, failure_rate=0.05), duration_s=120, seed=3, failures=True)


def test_parquet_round_trip_with_provenance(tmp_path, workload):
    path = export(workload.frame, tmp_path / "w.parquet", metadata=workload.metadata())
    back = pl.read_parquet(path)
    assert back.equals(workload.frame)
    meta = read_metadata(path)
    assert meta["spec_sha256"] == workload.spec_sha256
    assert meta["seed"] == 3
    assert meta["rows"] == workload.frame.height


def test_mooncake_round_trip_through_ingest(tmp_path, data_dir, workload):
    path = export(workload.frame, tmp_path / "synthetic_trace.jsonl")
    first = json.loads(path.read_text().splitlines()[0])
    assert list(first) == ["timestamp", "input_length", "output_length", "hash_ids"]
    res = ingest("mooncake-synthetic", [path], data_dir=data_dir)
    assert res.rows_read == res.rows_kept == workload.frame.height
    back = pl.read_parquet(res.path)
    f = workload.frame
    ms = (f["arrival_s"] * 1000).round(0)
    assert np.allclose(back["arrival_s"].to_numpy(), (ms - ms[0]).to_numpy() / 1000, atol=1e-9)
    assert back["input_tokens"].equals(f["input_tokens"])
    assert back["output_tokens"].equals(f["output_tokens"])
    # fresh ids: ⌈input/512⌉ blocks each, none shared
    n_blocks = back["hash_ids"].list.len().to_numpy()
    assert (n_blocks == -(-f["input_tokens"].to_numpy() // 512)).all()
    flat = back["hash_ids"].explode()
    assert flat.n_unique() == flat.len()


def test_burstgpt_round_trip_through_ingest(tmp_path, data_dir, workload):
    path = export(workload.frame, tmp_path / "BurstGPT_1.csv")
    assert path.read_text().splitlines()[0] == (
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"
    )
    res = ingest("burstgpt-1", [path], data_dir=data_dir)
    assert res.rows_kept == workload.frame.height and res.rows_dropped == 0
    back = pl.read_parquet(res.path)
    f = workload.frame
    assert back["input_tokens"].equals(f["input_tokens"])
    assert back["output_tokens"].equals(f["output_tokens"])
    assert back["failed"].equals(f["failed"])  # failed ⇔ Response tokens 0
    assert back["model"].unique().to_list() == ["GPT-4"]
    assert back["kind"].unique().to_list() == ["conversation"]
    t = f["arrival_s"].round(3)
    assert np.allclose(back["arrival_s"].to_numpy(), (t - t[0]).to_numpy(), atol=1e-6)


def test_fresh_hash_ids_shapes():
    ids = fresh_hash_ids(np.array([1, 512, 513, 0]), start=10)
    assert ids.to_list() == [[10], [11], [12, 13], []]


def test_unknown_suffix(tmp_path, workload):
    from burstlab.errors import InputError

    with pytest.raises(InputError, match="suffix"):
        export(workload.frame, tmp_path / "w.txt")
