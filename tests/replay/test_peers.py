"""Results the peer tools read (replay/peers): a real small run against the instant server is
exported as vLLM `bench serve`, AIPerf and guidellm results, checked against those tools'
documented schemas (field names, units, counts), imported back with the same requests and
latencies to the microsecond, and malformed peer files give one-line errors. No peer tool is
needed here; tests/interop runs the tools themselves."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from burstlab import engines
from burstlab.cli import app
from burstlab.errors import InputError, UsageError
from burstlab.replay.client import ClientOptions
from burstlab.replay.metrics import per_request
from burstlab.replay.peers import detect, export_run, import_run
from burstlab.replay.records import RECORD_SCHEMA, read_records
from burstlab.replay.run import ReplayConfig, replay
from burstlab.replay.summary import read_summary

N = 16
#: What vLLM `bench serve --save-result --save-detailed` writes (vllm/benchmarks/serve.py).
VLLM_KEYS = {
    "date", "backend", "endpoint_type", "label", "model_id", "tokenizer_id", "num_prompts",
    "request_rate", "burstiness", "max_concurrency", "duration", "completed", "failed",
    "total_input_tokens", "total_output_tokens", "request_throughput", "request_goodput",
    "output_throughput", "total_token_throughput", "input_lens", "output_lens", "ttfts", "itls",
    "latencies", "start_times", "queue_times", "generated_texts", "errors",
    "max_concurrent_requests",
    *(f"{s}_{m}_ms" for s in ("mean", "median", "std", "p99") for m in ("ttft", "tpot", "itl",
                                                                         "e2el")),
}  # fmt: skip
#: AIPerf MetricRecordMetadata fields without defaults.
AIPERF_REQUIRED_META = {
    "session_num", "request_start_ns", "request_end_ns", "worker_id", "record_processor_id",
    "benchmark_phase",
}  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real replay run: 16 requests of 6 tokens in 2-token chunks, 1 ms apart, a quarter of
    them failing with HTTP 500 (the instant server's seeded faults: 7 of 16 with seed 7)."""
    server = engines.instant_server(chunk_tokens=2, itl_s=0.001, faults={"http500": 0.25}, seed=7)
    out = tmp_path_factory.mktemp("peers") / "run"
    frame = pl.DataFrame(
        {
            "source": ["fixture"] * N,
            "arrival_s": [i * 0.005 for i in range(N)],
            "input_tokens": [12] * N,
            "output_tokens": [6] * N,
            "failed": [False] * N,
        }
    )
    config = ReplayConfig(client=ClientOptions(url=server.base_url), report=False, progress=False)
    try:
        replay(frame, config, out)
    finally:
        server.stop()
    yield out


@pytest.fixture(scope="module")
def records(run_dir: Path) -> pl.DataFrame:
    return per_request(read_records(run_dir))


def test_the_fixture_run_has_successes_failures_and_multi_token_chunks(records):
    assert records.height == N
    assert 0 < records["ok"].sum() < N
    ok = records.filter("ok")
    assert ok["chunk_tokens"].to_list()[0] == [2, 2, 2]


def test_vllm_result_has_vllms_keys_units_and_per_request_arrays(run_dir, records, tmp_path):
    result = export_run(run_dir, "vllm", tmp_path / "v")
    assert result.files == ["vllm-bench-serve.json"] and result.requests == N
    doc = json.loads((tmp_path / "v" / "vllm-bench-serve.json").read_text())
    assert set(doc) >= VLLM_KEYS
    for key in ("input_lens", "output_lens", "ttfts", "itls", "latencies", "start_times",
                "errors", "generated_texts"):  # fmt: skip
        assert len(doc[key]) == N, key
    ok = records["ok"].to_list()
    assert [e == "" for e in doc["errors"]] == ok
    assert doc["completed"] == sum(ok) and doc["failed"] == N - sum(ok)
    good = records.filter("ok")
    idx = [i for i, flag in enumerate(ok) if flag]
    # per-request arrays in seconds, statistics in milliseconds
    assert [doc["ttfts"][i] for i in idx] == pytest.approx(good["ttft_s"].to_list(), abs=1e-12)
    assert [doc["latencies"][i] for i in idx] == pytest.approx(good["e2e_s"].to_list(), abs=1e-12)
    assert doc["mean_ttft_ms"] == pytest.approx(good["ttft_s"].mean() * 1000)
    assert doc["median_e2el_ms"] == pytest.approx(good["e2e_s"].median() * 1000)
    assert doc["mean_tpot_ms"] == pytest.approx(good["tpot_s"].mean() * 1000)
    # vLLM's itls are chunk gaps: 3 chunks of 2 tokens → 2 gaps per success, none per failure
    assert [len(doc["itls"][i]) for i in range(N)] == [2 if f else 0 for f in ok]
    assert doc["output_lens"] == [6 if f else 0 for f in ok]


def test_aiperf_records_and_aggregate_have_aiperfs_fields_and_units(run_dir, records, tmp_path):
    export_run(run_dir, "aiperf", tmp_path / "a")
    lines = [
        json.loads(x) for x in (tmp_path / "a" / "profile_export.jsonl").read_text().splitlines()
    ]
    assert len(lines) == N
    ok = records["ok"].to_list()
    for line, flag, ttft, e2e in zip(lines, ok, records["ttft_s"], records["e2e_s"], strict=True):
        assert set(line) == {"metadata", "metrics", "error"}
        assert set(line["metadata"]) >= AIPERF_REQUIRED_META
        meta = line["metadata"]
        assert isinstance(meta["request_start_ns"], int) and meta["request_start_ns"] > 1.5e18
        assert meta["benchmark_phase"] == "profiling"
        if flag:
            m = line["metrics"]
            assert line["error"] is None
            assert m["time_to_first_token"] == {"value": pytest.approx(ttft * 1000), "unit": "ms"}
            assert m["request_latency"]["value"] == pytest.approx(e2e * 1000)
            assert m["output_sequence_length"] == {"value": 6, "unit": "tokens"}
            assert m["input_sequence_length"]["unit"] == "tokens"
            assert m["inter_chunk_latency"]["unit"] == "ms"
            assert len(m["inter_chunk_latency"]["value"]) == 2
            assert (meta["request_end_ns"] - meta["request_start_ns"]) / 1e6 == pytest.approx(
                m["request_latency"]["value"], abs=1e-5
            )
        else:
            assert line["error"]["code"] == 500 and line["error"]["message"]
            assert "time_to_first_token" not in line["metrics"]
    agg = json.loads((tmp_path / "a" / "profile_export_aiperf.json").read_text())
    assert agg["schema_version"] == "1.4"
    assert agg["request_count"] == {"unit": "requests", "avg": sum(ok)}
    assert agg["error_request_count"]["avg"] == N - sum(ok)
    assert agg["time_to_first_token"]["unit"] == "ms"
    assert agg["time_to_first_token"]["count"] == sum(ok)
    assert agg["time_to_first_token"]["avg"] == pytest.approx(records["ttft_s"].mean() * 1000)
    assert agg["benchmark_duration"]["unit"] == "sec"
    assert {"p1", "p5", "p25", "p50", "p75", "p90", "p95", "p99", "std"} <= set(
        agg["request_latency"]
    )


def test_guidellm_report_has_guidellms_structure_and_units(run_dir, records, tmp_path):
    export_run(run_dir, "guidellm", tmp_path / "g")
    doc = json.loads((tmp_path / "g" / "benchmarks.json").read_text())
    assert set(doc) == {"metadata", "config", "benchmarks", "conclusions"}
    (bench,) = doc["benchmarks"]
    assert bench["type_"] == "generative_benchmark"
    reqs = bench["requests"]
    n_ok = int(records["ok"].sum())
    assert len(reqs["successful"]) == n_ok and len(reqs["errored"]) == N - n_ok
    assert reqs["incomplete"] == []
    assert bench["metrics"]["request_totals"] == {
        "successful": n_ok, "incomplete": 0, "errored": N - n_ok, "total": N,
    }  # fmt: skip
    good = records.filter("ok")
    first = reqs["successful"][0]
    assert first["type_"] == "generative_request_stats"
    t = first["info"]["timings"]
    assert t["request_start"] > 1.5e9  # Unix seconds
    assert t["token_iterations"] == 3
    assert first["request_latency"] == pytest.approx(good["e2e_s"][0], abs=1e-6)  # seconds
    assert first["time_to_first_token_ms"] == pytest.approx(good["ttft_s"][0] * 1000, abs=1e-3)
    ttft = bench["metrics"]["time_to_first_token_ms"]["successful"]
    assert ttft["count"] == n_ok
    assert ttft["mean"] == pytest.approx(good["ttft_s"].mean() * 1000, abs=1e-3)
    assert set(ttft["percentiles"]) >= {"p001", "p50", "p99", "p999"}
    assert bench["metrics"]["request_latency"]["successful"]["mean"] == pytest.approx(
        good["e2e_s"].mean(), abs=1e-6
    )


@pytest.mark.parametrize("peer", ["vllm", "aiperf", "guidellm"])
def test_round_trip_keeps_requests_and_latencies_to_the_microsecond(
    run_dir, records, tmp_path, peer
):
    export_run(run_dir, peer, tmp_path / "peer")
    back = import_run(tmp_path / "peer", tmp_path / "back")
    assert back.peer == peer
    assert list(back.records.columns) == list(RECORD_SCHEMA)
    got = per_request(read_records(tmp_path / "back"))
    assert got.height == N
    assert got["ok"].sum() == records["ok"].sum()
    # requests are in send order on both sides
    want = records.sort("sent_s")
    got = got.sort("sent_s")
    assert got["ok"].to_list() == want["ok"].to_list()
    for col in ("ttft_s", "e2e_s", "tpot_s"):
        a, b = want[col].to_list(), got[col].to_list()
        assert [x is None for x in a] == [x is None for x in b], col
        assert [x for x in b if x is not None] == pytest.approx(
            [x for x in a if x is not None], abs=1e-6
        ), col
    assert (
        got.filter("ok")["output_tokens"].to_list() == want.filter("ok")["output_tokens"].to_list()
    )
    if peer != "guidellm":  # guidellm keeps first and last token only
        gaps = lambda f: f.filter("ok")["chunk_times_s"].list.diff(null_behavior="drop")  # noqa: E731
        for x, y in zip(gaps(want).to_list(), gaps(got).to_list(), strict=True):
            assert y == pytest.approx(x, abs=1e-6)
    summary = read_summary(tmp_path / "back")
    original = read_summary(run_dir)
    assert summary.counts.completed == original.counts.completed
    assert summary.counts.failed == original.counts.failed
    assert summary.full["ttft_s"].p50 == pytest.approx(original.full["ttft_s"].p50, abs=1e-6)
    run = json.loads((tmp_path / "back" / "run.json").read_text())
    assert run["imported_from"]["tool"].startswith(peer.replace("vllm", "vllm bench"))


def test_aiperf_and_guidellm_keep_the_schedule_vllm_does_not(run_dir, records, tmp_path):
    for peer in ("aiperf", "guidellm"):
        export_run(run_dir, peer, tmp_path / peer)
        got = per_request(import_run(tmp_path / peer).records).sort("sent_s")
        assert got["e2e_sched_s"].drop_nulls().to_list() == pytest.approx(
            records.sort("sent_s")["e2e_sched_s"].drop_nulls().to_list(), abs=1e-6
        )


def test_dropped_requests_round_trip_as_drops(run_dir, tmp_path):
    """A request dropped behind schedule (never sent) has no peer counterpart: it is written as
    a failure named 'dropped' and read back as a drop."""
    rec = read_records(run_dir)
    rec = rec.with_columns(
        sent_s=pl.when(pl.col("req_id") == 0).then(None).otherwise(pl.col("sent_s")),
        ok=pl.when(pl.col("req_id") == 0).then(False).otherwise(pl.col("ok")),
        dropped=pl.col("req_id") == 0,
        error_kind=pl.when(pl.col("req_id") == 0).then(pl.lit("dropped")).otherwise("error_kind"),
    )
    dropped_run = tmp_path / "dropped-run"
    shutil.copytree(run_dir, dropped_run)
    shutil.rmtree(dropped_run / "records")
    (dropped_run / "records").mkdir()
    rec.write_parquet(dropped_run / "records" / "part-00000.parquet")
    for peer in ("vllm", "aiperf", "guidellm"):
        export_run(dropped_run, peer, tmp_path / peer)
        back = import_run(tmp_path / peer, tmp_path / f"{peer}-back")
        assert back.records["dropped"].sum() == 1, peer
        assert back.metrics.counts.dropped == 1, peer
        assert back.metrics.counts.recorded == N, peer
    doc = json.loads((tmp_path / "vllm" / "vllm-bench-serve.json").read_text())
    assert doc["errors"][0].startswith("dropped")


def _one_line(exc: pytest.ExceptionInfo[InputError], *parts: str) -> str:
    text = str(exc.value)
    assert "\n" not in text
    for part in parts:
        assert part in text, (part, text)
    return text


def test_malformed_vllm_results_name_file_and_field(run_dir, tmp_path):
    export_run(run_dir, "vllm", tmp_path / "v")
    path = tmp_path / "v" / "vllm-bench-serve.json"
    good = json.loads(path.read_text())

    def broken(**change) -> Path:
        doc = {**good, **change}
        doc = {k: v for k, v in doc.items() if v is not ...}
        path.write_text(json.dumps(doc))
        return path

    with pytest.raises(InputError) as exc:
        import_run(broken(ttfts=...))  # saved without --save-detailed: detected as a result
    _one_line(exc, "vllm-bench-serve.json", "ttfts", "--save-detailed")
    with pytest.raises(InputError) as exc:
        import_run(broken(itls=good["itls"][:-1]))
    _one_line(exc, "itls", f"{N} entries")
    ttfts = list(good["ttfts"])
    i = good["errors"].index("")
    ttfts[i] = "fast"
    with pytest.raises(InputError) as exc:
        import_run(broken(ttfts=ttfts))
    _one_line(exc, f"ttfts[{i}]", "finite number")
    with pytest.raises(InputError) as exc:
        import_run(broken(start_times=None))
    _one_line(exc, "start_times")


def test_malformed_aiperf_records_name_file_line_and_field(run_dir, tmp_path):
    export_run(run_dir, "aiperf", tmp_path / "a")
    path = tmp_path / "a" / "profile_export.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n")
    with pytest.raises(InputError) as exc:
        import_run(tmp_path / "a")
    _one_line(exc, "profile_export.jsonl", "line 2", "not a JSON line")
    doc = json.loads(lines[0])
    del doc["metadata"]["request_start_ns"]
    path.write_text(json.dumps(doc) + "\n")
    with pytest.raises(InputError) as exc:
        import_run(path)
    _one_line(exc, "line 1", "metadata.request_start_ns")
    ok = next(json.loads(x) for x in lines if json.loads(x)["error"] is None)
    ok["metrics"]["time_to_first_token"]["unit"] = "s"
    path.write_text(json.dumps(ok) + "\n")
    with pytest.raises(InputError) as exc:
        import_run(path)
    _one_line(exc, "metrics.time_to_first_token.unit", "expected ms", "found s")


def test_malformed_guidellm_reports_name_file_and_field(run_dir, tmp_path):
    export_run(run_dir, "guidellm", tmp_path / "g")
    path = tmp_path / "g" / "benchmarks.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "benchmarks": {}}))
    with pytest.raises(InputError) as exc:
        import_run(tmp_path / "g")
    _one_line(exc, "benchmarks.json", "benchmarks", "non-empty list")
    doc["benchmarks"][0]["requests"]["successful"][1]["info"]["timings"]["request_start"] = "x"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as exc:
        import_run(path)
    _one_line(exc, "benchmarks[0].requests.successful[1].info.timings.request_start")


def test_unknown_files_and_formats_are_refused(run_dir, tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(InputError) as exc:
        detect(tmp_path / "x.json")
    _one_line(exc, "x.json", "not a peer run")
    with pytest.raises(InputError) as exc:
        import_run(run_dir)  # a burstlab run is no peer run
    _one_line(exc, "no peer run here")
    with pytest.raises(UsageError, match="unknown peer format 'genai-perf'"):
        export_run(run_dir, "genai-perf", tmp_path / "o")
    with pytest.raises(InputError, match="not a burstlab run folder"):
        export_run(tmp_path / "missing", "vllm", tmp_path / "o")


def test_cli_export_and_import_run(run_dir, tmp_path):
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "data")]
    out = tmp_path / "exported"
    result = runner.invoke(
        app, [*base, "export", str(run_dir), "--to", "aiperf", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "profile_export.jsonl").is_file()
    again = runner.invoke(app, [*base, "export", str(run_dir), "--to", "aiperf", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    back = tmp_path / "back"
    result = runner.invoke(app, [*base, "import-run", str(out), "--out", str(back)])
    assert result.exit_code == 0, result.output
    assert read_summary(back).counts.recorded == N
    bad = runner.invoke(
        app, [*base, "export", str(run_dir), "--to", "nope", "--out", str(tmp_path / "n")]
    )
    assert bad.exit_code == 2
    assert len(bad.output.strip().splitlines()) == 1 and "nope" in bad.output


def test_trace_exports_the_peers_replay(tmp_path):
    """The schedules the peers replay: Mooncake JSONL with integer-ms timestamps (AIPerf's
    mooncake_trace; vLLM's timed trace with --timed-trace-sec-multiplier 0.001) and the Azure
    LLM trace CSV that inference-perf's AzurePublicDataset reader parses (times relative to the
    first row, microseconds)."""
    from datetime import datetime, timezone

    from burstlab.synth.export import export

    frame = pl.DataFrame(
        {
            "arrival_s": [0.0, 0.0015, 61.25, 3600.000001],
            "input_tokens": [10, 600, 30, 40],
            "output_tokens": [1, 2, 3, 4],
        }
    )
    export(frame, tmp_path / "t.csv", "azure")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "TIMESTAMP,ContextTokens,GeneratedTokens"
    stamps = [
        datetime.strptime(x.split(",")[0], "%Y-%m-%d %H:%M:%S.%f")
        .replace(tzinfo=timezone.utc)
        .timestamp()
        for x in lines[1:]
    ]
    assert [t - stamps[0] for t in stamps] == pytest.approx(frame["arrival_s"].to_list(), abs=1e-6)
    assert [int(x.split(",")[1]) for x in lines[1:]] == [10, 600, 30, 40]
    assert [int(x.split(",")[2]) for x in lines[1:]] == [1, 2, 3, 4]
    export(frame, tmp_path / "t.jsonl", "mooncake")
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [r["timestamp"] for r in rows] == [0, 2, 61250, 3600000]  # ms
    assert set(rows[0]) == {"timestamp", "input_length", "output_length", "hash_ids"}
    assert len(rows[1]["hash_ids"]) == 2  # ⌈600 / 512⌉ blocks
