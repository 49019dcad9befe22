"""burstlab's peer formats, judged by the peers' own code (the interop lane).

- vLLM: `bench serve` (vllm.benchmarks.serve, run by tests/interop/vllm_bench.py) replays
  against the instant server with --save-result --save-detailed and burstlab imports its file
  with the same requests and latencies to the microsecond; a burstlab export's per-request
  arrays go through vLLM's own `calculate_metrics` and give the statistics the export states.
- AIPerf: `aiperf profile` against the instant server, imported the same way; a burstlab export
  validates with AIPerf's own record and aggregate models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from interop_helpers import run_peer  # tests/interop/interop_helpers.py

from burstlab.replay.client import ClientOptions
from burstlab.replay.metrics import per_request
from burstlab.replay.peers import export_run, import_run
from burstlab.replay.run import ReplayConfig, replay

pytestmark = pytest.mark.interop
MODEL = "burstlab-instant"


def _burstlab_run(server, out: Path, n: int = 12) -> Path:
    frame = pl.DataFrame(
        {
            "source": ["fixture"] * n,
            "arrival_s": [i * 0.01 for i in range(n)],
            "input_tokens": [12] * n,
            "output_tokens": [6] * n,
            "failed": [False] * n,
        }
    )
    config = ReplayConfig(client=ClientOptions(url=server.base_url), report=False, progress=False)
    replay(frame, config, out)
    return out


def _check(proc) -> str:
    """The last line of a peer process's output (the helper scripts print their JSON last:
    vLLM prints its own report lines before it)."""
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def test_vllm_bench_serve_result_imports_with_the_same_requests_and_latencies(
    vllm_python, tokenizer, instant_server, tmp_path
):
    server = instant_server(itl_s=0.001)
    out = tmp_path / "vllm"
    _check(run_peer(
        vllm_python, "vllm_bench.py", "--backend", "openai", "--base-url", server.base_url,
        "--endpoint", "/v1/completions", "--model", MODEL, "--tokenizer", str(tokenizer),
        "--dataset-name", "random", "--random-input-len", "16", "--random-output-len", "8",
        "--num-prompts", "12", "--request-rate", "50", "--seed", "1",
        "--save-result", "--save-detailed", "--result-dir", str(out),
        "--result-filename", "result.json",
    ))  # fmt: skip
    doc = json.loads((out / "result.json").read_text())
    result = import_run(out, tmp_path / "imported")
    assert result.peer == "vllm"
    pr = per_request(result.records)
    assert pr.height == len(doc["ttfts"]) == 12
    assert pr["ok"].sum() == doc["completed"]
    np.testing.assert_allclose(pr["ttft_s"].to_numpy(), doc["ttfts"], atol=1e-6)
    np.testing.assert_allclose(pr["e2e_s"].to_numpy(), doc["latencies"], atol=1e-6)
    full = result.metrics.full
    assert full["ttft_s"].mean * 1000 == pytest.approx(doc["mean_ttft_ms"], abs=1e-6)
    assert full["tpot_s"].mean * 1000 == pytest.approx(doc["mean_tpot_ms"], abs=1e-6)
    assert full["icl_s"].mean * 1000 == pytest.approx(doc["mean_itl_ms"], abs=1e-6)  # chunk gaps
    assert result.metrics.total_output_tokens == doc["total_output_tokens"]


def test_exported_vllm_result_gives_vllms_own_statistics(vllm_python, instant_server, tmp_path):
    server = instant_server(chunk_tokens=2, itl_s=0.001, faults={"http500": 0.25}, seed=7)
    run = _burstlab_run(server, tmp_path / "run")
    export_run(run, "vllm", tmp_path / "v")
    path = tmp_path / "v" / "vllm-bench-serve.json"
    doc = json.loads(path.read_text())
    got = json.loads(_check(run_peer(vllm_python, "vllm_metrics.py", str(path))))
    m = got["metrics"]
    assert m["completed"] == doc["completed"] and m["failed"] == doc["failed"]
    assert m["total_input"] == doc["total_input_tokens"]
    assert m["total_output"] == doc["total_output_tokens"]
    assert got["output_lens"] == doc["output_lens"]
    assert m["request_throughput"] == pytest.approx(doc["request_throughput"])
    for name in ("ttft", "tpot", "itl", "e2el"):
        for stat in ("mean", "median", "std"):
            key = f"{stat}_{name}_ms"
            assert m[key] == pytest.approx(doc[key], abs=1e-9), key
        for p, value in m[f"percentiles_{name}_ms"]:
            assert value == pytest.approx(doc[f"p{p:g}_{name}_ms"], abs=1e-9), (name, p)


def test_aiperf_profile_imports_with_the_same_requests_and_latencies(
    aiperf_python, tokenizer, instant_server, tmp_path
):
    server = instant_server(itl_s=0.001)
    out = tmp_path / "aiperf"
    _check(run_peer(
        aiperf_python, "-m", "aiperf", "profile", "--model", MODEL, "--url", server.base_url,
        "--endpoint-type", "completions", "--streaming", "--request-count", "12",
        "--request-rate", "50", "--prompt-input-tokens-mean", "16", "--output-tokens-mean", "8",
        "--tokenizer", str(tokenizer), "--artifact-dir", str(out), "--ui-type", "none",
        "--random-seed", "1", "--export-level", "records",
    ))  # fmt: skip
    lines = [json.loads(x) for x in (out / "profile_export.jsonl").read_text().splitlines()]
    agg = json.loads((out / "profile_export_aiperf.json").read_text())
    result = import_run(out, tmp_path / "imported")
    assert result.peer == "aiperf"
    pr = per_request(result.records)
    lines.sort(key=lambda ln: ln["metadata"]["request_start_ns"])
    assert pr.height == len(lines) == 12
    ttft = [ln["metrics"]["time_to_first_token"]["value"] / 1000 for ln in lines]
    latency = [ln["metrics"]["request_latency"]["value"] / 1000 for ln in lines]
    np.testing.assert_allclose(pr.sort("sent_s")["ttft_s"].to_numpy(), ttft, atol=1e-6)
    np.testing.assert_allclose(pr.sort("sent_s")["e2e_s"].to_numpy(), latency, atol=1e-6)
    full = result.metrics.full
    assert full["ttft_s"].mean * 1000 == pytest.approx(agg["time_to_first_token"]["avg"], abs=1e-6)
    assert full["e2e_s"].mean * 1000 == pytest.approx(agg["request_latency"]["avg"], abs=1e-6)


def test_exported_aiperf_run_validates_with_aiperfs_own_models(
    aiperf_python, instant_server, tmp_path
):
    server = instant_server(chunk_tokens=2, itl_s=0.001, faults={"http500": 0.25}, seed=7)
    run = _burstlab_run(server, tmp_path / "run")
    export_run(run, "aiperf", tmp_path / "a")
    got = json.loads(_check(run_peer(aiperf_python, "aiperf_validate.py", str(tmp_path / "a"))))
    pr = per_request(pl.read_parquet(run / "records" / "*.parquet")).sort("req_id")
    assert got["records"] == pr.height
    assert got["errors"] == pr.height - pr["ok"].sum()
    np.testing.assert_allclose(got["ttft_ms"], pr["ttft_s"].drop_nulls().to_numpy() * 1000)
    assert got["aggregate_request_count"] == pr["ok"].sum()


def test_exported_guidellm_requests_validate_with_guidellms_own_model(
    guidellm_python, instant_server, tmp_path
):
    """Each exported request is a valid `GenerativeRequestStats`, and guidellm's own computed
    fields (from info.timings, Unix seconds) give burstlab's latencies. The report envelope
    (`GenerativeBenchmarksReport`) is not checked: see docs/interop.md."""
    server = instant_server(chunk_tokens=2, itl_s=0.001, faults={"http500": 0.25}, seed=7)
    run = _burstlab_run(server, tmp_path / "run")
    export_run(run, "guidellm", tmp_path / "g")
    got = json.loads(
        _check(
            run_peer(
                guidellm_python, "guidellm_validate.py", str(tmp_path / "g" / "benchmarks.json")
            )
        )
    )
    pr = per_request(pl.read_parquet(run / "records" / "*.parquet")).sort("req_id")
    assert len(got) == pr.height
    ok = pr.filter("ok")
    good = [g for g in got if g["status"] == "successful"]
    assert len(good) == ok.height
    np.testing.assert_allclose([g["request_latency"] for g in good], ok["e2e_s"], atol=1e-6)
    np.testing.assert_allclose(
        [g["time_to_first_token_ms"] for g in good], ok["ttft_s"] * 1000, atol=1e-3
    )
    np.testing.assert_allclose(
        [g["request_scheduled_latency"] for g in good], ok["e2e_sched_s"], atol=1e-6
    )
    assert [g["output_tokens"] for g in good] == ok["output_tokens"].to_list()
