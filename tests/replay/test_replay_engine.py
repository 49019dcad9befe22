"""End to end: a real Azure 2023 conversation window replayed against a real llama.cpp engine
on 127.0.0.1, checked against the server's own `usage` and Prometheus counters."""

from __future__ import annotations

import json

import polars as pl
import pytest

from burstlab.engines.process import prometheus_counters
from burstlab.replay.client import ClientOptions
from burstlab.replay.goodput import parse_slo
from burstlab.replay.metrics import per_request
from burstlab.replay.run import ReplayConfig, replay
from burstlab.replay.schedule import ScheduleOptions
from burstlab.traces import sample_frame

pytestmark = [pytest.mark.engine, pytest.mark.slow]

N = 60
MAX_IN, MAX_OUT = 400, 32  # inside the tiny engine's 2048-token slots


def config(engine, endpoint="completions", limit=N, **extra) -> ReplayConfig:
    return ReplayConfig(
        client=ClientOptions(url=engine.base_url, endpoint=endpoint),
        schedule=ScheduleOptions(
            window=(600.0, 1200.0), speedup=5, limit=limit,
            max_input_tokens=MAX_IN, max_output_tokens=MAX_OUT, min_output_tokens=2,
        ),
        model=engine.model,
        progress=False,
        source="azure-llm-2023-conv",
        **extra,
    )  # fmt: skip


def test_azure_window_against_llama_cpp(engine, tmp_path):
    trace = sample_frame("azure-llm-2023-conv")
    slo = parse_slo("ttft=2.0,tpot=0.2")
    before = prometheus_counters(engine.base_url)
    result = replay(trace, config(engine, slo=slo, vllm_keys=True), tmp_path / "run")
    after = prometheus_counters(engine.base_url)
    rec = result.records
    s = result.metrics

    # every scheduled request was sent once and succeeded
    assert rec.height == N == s["counts"]["scheduled"] == s["counts"]["completed"], (
        rec.filter(~pl.col("ok"))
        .select("req_id", "status", "error_kind", "error", "sent_s", "end_s")
        .to_dicts()
    )
    assert rec["ok"].all(), rec["error"].drop_nulls().to_list()
    assert rec["req_id"].to_list() == list(range(N))

    # the schedule came from the real trace window: 600 ≤ arrival < 1200, in order
    sched = result.schedule.table
    assert sched["trace_arrival_s"].is_sorted() and sched["trace_arrival_s"].min() >= 600.0
    expected_out = sched["output_tokens"].to_list()
    expected_in = sched["input_tokens"].to_list()

    # output tokens: exactly the (clipped) trace lengths, by the server's usage and by our chunks
    assert rec["output_tokens_server"].to_list() == expected_out
    assert rec["output_tokens_client"].to_list() == expected_out
    # prompt tokens: exactly the trace's input lengths as the server counted them
    assert rec["prompt_tokens_server"].to_list() == expected_in
    assert s["tokens"]["prompt_mismatch_rate"] == 0.0
    assert s["tokens"]["output_mismatch_rate"] == 0.0

    # the engine's own counters agree (the overhead probe added 1 generated token)
    predicted = after["llamacpp:tokens_predicted_total"] - before["llamacpp:tokens_predicted_total"]
    assert predicted == sum(expected_out) + 1
    assert s["total_output_tokens"] == sum(expected_out)

    # latencies are plausible for a tiny CPU model
    pr = per_request(rec)
    assert (pr["ttft_s"] > 0).all() and (pr["ttft_s"] <= pr["e2e_s"]).all()
    assert (pr["ttft_sched_s"] >= pr["ttft_s"]).all()
    assert (pr["e2e_sched_s"] >= pr["e2e_s"]).all()
    tpot = pr["tpot_s"].drop_nulls()
    # tiny model: a few ms per token alone; a loaded 2-core machine can stretch that a lot
    assert tpot.len() == N and tpot.min() > 0 and tpot.median() < 0.5 and tpot.max() < 2.0
    assert s["full"]["itl_s"]["count"] == sum(o - 1 for o in expected_out)

    # summary and goodput are consistent with the records
    good = pr.filter(
        pl.col("ok")
        & (pl.col("ttft_s") <= 2.0)
        & (pl.col("tpot_s").is_null() | (pl.col("tpot_s") <= 0.2))
    ).height
    assert s["goodput"]["good"] == good
    assert s["goodput"]["attainment"] == pytest.approx(good / N)
    assert s["full"]["e2e_s"]["max"] == pytest.approx(pr["e2e_s"].max())
    assert s["vllm_bench_serve"]["completed"] == N
    assert s["vllm_bench_serve"]["mean_ttft_ms"] == pytest.approx(pr["ttft_s"].mean() * 1000)

    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["model"] == engine.model and run["prompts"]["exact"] is True
    assert (tmp_path / "run" / "report.html").stat().st_size > 10_000


def test_chat_endpoint_with_template_overhead(engine, tmp_path):
    result = replay(
        sample_frame("azure-llm-2023-conv"), config(engine, "chat", limit=12, report=False),
        tmp_path / "chat",
    )  # fmt: skip
    rec = result.records
    assert rec["ok"].all(), rec["error"].drop_nulls().to_list()
    assert result.prompts.overhead > 0  # the chat template's tokens, measured and subtracted
    assert rec["prompt_tokens_server"].to_list() == result.schedule.table["input_tokens"].to_list()
    assert rec["output_tokens_server"].to_list() == result.schedule.table["output_tokens"].to_list()


def test_cli_replay_with_its_own_local_engine(tmp_path):
    """`burstlab replay --engine tiny`: start llama.cpp, replay, stop it — one command."""
    from typer.testing import CliRunner

    from burstlab.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(tmp_path / "data"), "replay", "azure-llm-2023-conv", "--engine", "tiny",
         "--window", "600:1200", "--speedup", "5", "--limit", "10",
         "--max-input-tokens", "300", "--max-output-tokens", "16", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["completed"] == 10, summary["counts"]
    run = json.loads((out / "run.json").read_text())
    assert run["engine"]["engine"] == "llama.cpp (xllamacpp)" and run["engine"]["n_parallel"] == 4
    assert run["schedule"]["max_input_tokens"] == 300


def test_mooncake_block_sharing_reaches_the_engines_prefix_cache(engine, tmp_path):
    """Same hash_ids block → same text: llama.cpp reuses the cached prefix. Without hash_ids
    the same requests share nothing (only a BOS-sized accident per request)."""
    trace = sample_frame("mooncake-conversation")
    cached = {}
    for name, frame in (
        ("shared", trace),
        ("unshared", trace.with_columns(hash_ids=pl.lit(None, pl.List(pl.Int64)))),
    ):
        cfg = ReplayConfig(
            client=ClientOptions(url=engine.base_url),
            schedule=ScheduleOptions(limit=16, speedup=10, max_input_tokens=1024,
                                     max_output_tokens=4, sessions=False),
            model=engine.model, progress=False, report=False,
        )  # fmt: skip
        before = prometheus_counters(engine.base_url)
        result = replay(frame, cfg, tmp_path / name)
        after = prometheus_counters(engine.base_url)
        assert result.records["ok"].all()
        assert result.records["prompt_tokens_server"].to_list() == [1024] * 16
        key = "llamacpp:prompt_tokens_cached_total"
        cached[name] = after[key] - before[key]
    total = 16 * 1024
    assert cached["shared"] > 0.25 * total  # every request starts with the same 512-token block
    assert cached["unshared"] < 0.02 * total
