"""The shipped real samples: exact counts, spans and exact 7-digit timestamps (PROVENANCE.md)."""

from __future__ import annotations

import polars as pl
import pytest

import burstlab
from burstlab.schema import schema
from burstlab.traces import ingest, open, sample_frame

EXPECTED = {
    # id: (rows, last arrival_s, sum input tokens is checked against the raw CSV below)
    "azure-llm-2023-code": (8_819, 3435.948056),
    "azure-llm-2023-conv": (19_366, 3501.721937),
    "mooncake-conversation": (3_000, 987.0),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_frame_counts_and_span(name):
    df = sample_frame(name)
    rows, last = EXPECTED[name]
    assert df.height == rows
    assert dict(df.schema) == schema("requests")
    assert df["arrival_s"][0] == 0.0
    assert df["arrival_s"].max() == pytest.approx(last, abs=1e-9)
    assert (df["source"] == name).all()
    assert not df["failed"].any()


def test_azure_timestamps_parsed_exactly_to_100ns(samples):
    raw = pl.read_csv(samples / "azure" / "AzureLLMInferenceTrace_code.csv")
    df = sample_frame("azure-llm-2023-code")
    # second row: 18:17:04.0319600 - 18:17:03.9799600 = 0.052 s exactly
    assert df["arrival_s"][1] == 0.052
    # every row's fractional digits survive: recompute from the raw text with integer maths
    text = raw["TIMESTAMP"].str.split(".")
    whole = text.list.get(0).str.to_datetime("%Y-%m-%d %H:%M:%S").dt.epoch("s")
    ticks = text.list.get(1).cast(pl.Int64)  # 7 digits = 100 ns ticks
    total_ticks = whole * 10_000_000 + ticks
    expected = ((total_ticks - total_ticks[0]) * 100).to_numpy() / 1e9
    assert (df["arrival_s"].to_numpy() == expected).all()
    assert df["input_tokens"].sum() == raw["ContextTokens"].sum()
    assert df["output_tokens"].sum() == raw["GeneratedTokens"].sum()


def test_mooncake_keeps_hash_ids_and_ms_to_seconds(samples):
    df = sample_frame("mooncake-conversation")
    first = df.row(0, named=True)
    assert first["hash_ids"] == list(range(14))
    assert first["input_tokens"] == 6758 and first["output_tokens"] == 500
    # len(hash_ids) == ceil(input/512) on every row (PROVENANCE.md)
    assert (df["hash_ids"].list.len() == (df["input_tokens"] + 511) // 512).all()
    # integer milliseconds in, exact seconds out; ~3 s buckets -> only a few distinct times
    ms = df["arrival_s"] * 1000
    assert (ms == ms.round()).all()
    assert df["arrival_s"].n_unique() < 400


def test_ingest_sample_reconciles_and_matches_sample_frame(data_dir):
    result = ingest("azure-llm-2023-conv", sample=True)
    assert result.rows_read == result.rows_kept + sum(result.dropped.values()) == 19_366
    assert result.path.exists() and result.path.is_relative_to(data_dir)
    assert result.t0_utc == "2023-11-16T18:15:46.680590000Z"
    assert open("azure-llm-2023-conv").collect().equals(sample_frame("azure-llm-2023-conv"))
    assert burstlab.open("azure-llm-2023-conv").select(pl.len()).collect().item() == 19_366
    again = ingest("azure-llm-2023-conv", sample=True)
    assert again.skipped and again.rows_kept == 19_366
