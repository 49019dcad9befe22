"""Requests that do not fit the server's context: the context length is read from the server
before a run (llama.cpp /props, vLLM/SGLang /v1/models), the oversized requests are counted up
front (one warning line, run.json), sent / skipped / clipped as asked, marked in the records,
and the summary splits errors between oversized and fitting requests.

The report: the shipped conv sample replayed against `burstlab engine` (2,048 tokens a slot)
gave 14 HTTP 400s in 150 requests, without a word before the run about why."""

from __future__ import annotations

import json
import warnings

import polars as pl
import pytest
from typer.testing import CliRunner

from burstlab.cli import app
from burstlab.errors import ReplayError, UsageError
from burstlab.replay.client import ClientOptions
from burstlab.replay.run import ContextWarning, ReplayConfig, replay
from burstlab.replay.schedule import ScheduleOptions, apply_context, build_schedule
from burstlab.replay.summary import ContextFit, read_summary
from burstlab.replay.target import context_length
from burstlab.traces import sample_frame


def frame(inputs: list[int], outputs: list[int]) -> pl.DataFrame:
    n = len(inputs)
    return pl.DataFrame(
        {
            "source": ["fixture"] * n,
            "arrival_s": [i * 0.01 for i in range(n)],
            "input_tokens": inputs,
            "output_tokens": outputs,
            "failed": [False] * n,
        }
    )


def config(url: str, fit: str = "send", **extra) -> ReplayConfig:
    return ReplayConfig(
        client=ClientOptions(url=url),
        schedule=ScheduleOptions(max_gap=0.01, fit_context=fit),  # type: ignore[arg-type]
        probe_tokenize=False,
        report=False,
        progress=False,
        **extra,
    )


# -- where the context length comes from ----------------------------------------------------


def test_context_length_from_each_servers_self_description():
    llama = {"props": {"default_generation_settings": {"n_ctx": 2048, "params": {}}}}
    assert context_length(llama) == (2048, "/props default_generation_settings.n_ctx")
    vllm = {
        "models": {"data": [{"id": "a", "max_model_len": 4096}, {"id": "b", "max_model_len": 8192}]}
    }
    assert context_length(vllm, "b") == (8192, "/v1/models max_model_len")
    assert context_length(vllm, "unknown") == (4096, "/v1/models max_model_len")  # the first
    assert context_length(vllm) == (4096, "/v1/models max_model_len")
    newer_llama = {"models": {"data": [{"id": "m", "meta": {"n_ctx": 1024, "n_ctx_train": 8192}}]}}
    assert context_length(newer_llama, "m") == (1024, "/v1/models meta.n_ctx")
    # /props wins over /v1/models (llama.cpp lists the per-slot context in both)
    assert context_length({**llama, **vllm}) == (2048, "/props default_generation_settings.n_ctx")
    # nothing said, or junk: unknown
    for junk in (
        {},
        {"reachable": False},
        {"props": {"default_generation_settings": {"n_ctx": 0}}},
        {"props": {"default_generation_settings": "n_ctx"}},
        {"models": {"data": [{"id": "x", "max_model_len": "4096"}]}},
        {"models": {"data": [{"id": "x", "max_model_len": 1e400}]}},
        {"models": {"data": [{"id": "x", "max_model_len": True}]}},
        {"models": {"data": "x"}},
        {"models": []},
    ):
        assert context_length(junk) == (None, None), junk


# -- what the schedule does with oversized requests ------------------------------------------


@pytest.mark.parametrize("mode", ["send", "skip", "clip"])
def test_apply_context_marks_skips_or_clips(mode):
    # need: 110, 1000 (= the context: fits), 1001, 5000+64
    inputs, outputs = [100, 990, 1000, 5000], [10, 10, 1, 64]
    schedule = build_schedule(frame(inputs, outputs), ScheduleOptions(fit_context=mode))  # type: ignore[arg-type]
    fitted, counts = apply_context(schedule, 1000)
    t = fitted.table
    assert counts["oversized"] == 2
    if mode == "send":
        assert counts == {"oversized": 2, "skipped": 0, "clipped": 0}
        assert t["oversized"].to_list() == [False, False, True, True]
        assert t["input_tokens"].to_list() == inputs
    elif mode == "skip":
        assert counts == {"oversized": 2, "skipped": 2, "clipped": 0}
        assert t["req_id"].to_list() == [0, 1]  # ids stay those of the schedule
        assert t["oversized"].to_list() == [False, False]
        assert fitted.counts["scheduled"] == 2 and fitted.counts["skipped_oversized"] == 2
    else:
        assert counts == {"oversized": 2, "skipped": 0, "clipped": 2}
        # the prompt is clipped first; the output keeps its length
        assert t["input_tokens"].to_list() == [100, 990, 999, 936]
        assert t["output_tokens"].to_list() == [10, 10, 1, 64]
        assert t["oversized"].to_list() == [False] * 4
        assert t["trace_input_tokens"].to_list() == inputs
        assert fitted.counts["clipped_to_context"] == 2


def test_clip_shortens_an_output_that_alone_does_not_fit():
    schedule = build_schedule(frame([50], [5000]), ScheduleOptions(fit_context="clip"))
    fitted, _ = apply_context(schedule, 512)
    assert fitted.table["output_tokens"].to_list() == [511]
    assert fitted.table["input_tokens"].to_list() == [1]
    assert fitted.table["oversized"].to_list() == [False]


def test_unknown_context_marks_nothing():
    schedule = build_schedule(frame([10, 99999], [5, 5]), ScheduleOptions(fit_context="skip"))
    fitted, counts = apply_context(schedule, None)
    assert counts == {"oversized": 0, "skipped": 0, "clipped": 0}
    assert fitted.table["oversized"].to_list() == [None, None]
    assert fitted.n == 2


def test_fit_context_value_is_checked():
    with pytest.raises(UsageError, match="fit_context: expected one of send, skip, clip"):
        build_schedule(frame([1], [1]), ScheduleOptions(fit_context="drop"))  # type: ignore[arg-type]


def test_warning_text_names_the_count_the_context_and_the_remedies():
    fit = ContextFit(
        context_tokens=2048, reported_by="/props", action="send", scheduled=150, oversized=14,
        longest=4176,
    )  # fmt: skip
    assert fit.warning() == (
        "14 of 150 scheduled requests need more than the server's 2,048-token context (prompt "
        "+ output tokens, up to 4,176): sent as asked, they will fail or stop short — clip "
        "prompts with max_input_tokens, leave them out or clip them with fit_context "
        "skip|clip, or serve a larger context"
    )
    flags = fit.warning(lambda p: "--" + p.replace("_", "-"))
    assert flags is not None and "--max-input-tokens" in flags and "--fit-context" in flags
    assert ContextFit(2048, "/props", "send", 150, 0, 100).warning() is None
    assert ContextFit(None, None, "send", 150, 0, 100).warning() is None
    unknown = ContextFit(None, None, "skip", 150, 0, 100).warning()
    assert unknown is not None and "did not report its context length" in unknown


# -- end to end against the instant server (reports max_model_len in /v1/models) -------------


def test_replay_counts_marks_and_splits_oversized_requests(instant_server, tmp_path):
    server = instant_server(max_model_len=600)
    # need: 110, 600 (fits exactly), 601, 1010, 60 → two oversized
    requests = frame([100, 590, 591, 1000, 50], [10, 10, 10, 10, 10])
    with pytest.warns(ContextWarning) as caught:
        result = replay(requests, config(server.base_url), tmp_path / "run")
    [w] = [c for c in caught if issubclass(c.category, ContextWarning)]
    assert str(w.message).startswith(
        "2 of 5 scheduled requests need more than the server's 600-token context "
        "(prompt + output tokens, up to 1,010): sent as asked"
    )
    rec = result.records
    assert rec["oversized"].to_list() == [False, False, True, True, False]
    assert rec["ok"].all()  # the instant server never refuses: the requests were still sent
    assert rec["prompt_tokens_server"].to_list() == [100, 590, 591, 1000, 50]
    context = result.metrics.context
    assert context is not None
    assert (context.context_tokens, context.reported_by) == (600, "/v1/models max_model_len")
    assert (context.oversized, context.oversized_recorded, context.fitting_recorded) == (2, 2, 3)
    assert (context.oversized_failed, context.fitting_failed) == (0, 0)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["context"] == {
        "context_tokens": 600, "reported_by": "/v1/models max_model_len", "action": "send",
        "scheduled": 5, "oversized": 2, "longest": 1010, "skipped": 0, "clipped": 0,
    }  # fmt: skip
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["context"]["oversized_recorded"] == 2
    assert read_summary(tmp_path / "run").context == context


def test_replay_skip_and_clip(instant_server, tmp_path):
    server = instant_server(max_model_len=600)
    requests = frame([100, 590, 591, 1000, 50], [10, 10, 10, 10, 10])
    seen: list[ContextFit] = []
    skipped = replay(requests, config(server.base_url, "skip", on_context=seen.append),
                     tmp_path / "skip")  # fmt: skip
    assert [f.skipped for f in seen] == [2]
    assert skipped.records["req_id"].to_list() == [0, 1, 4]
    assert skipped.metrics.counts.scheduled == 3
    assert skipped.metrics.context is not None and skipped.metrics.context.skipped == 2

    clipped = replay(requests, config(server.base_url, "clip", on_context=seen.append),
                     tmp_path / "clip")  # fmt: skip
    rec = clipped.records
    assert rec["prompt_tokens_server"].to_list() == [100, 590, 590, 590, 50]
    assert rec["output_tokens_server"].to_list() == [10] * 5
    assert rec["oversized"].to_list() == [False] * 5
    assert clipped.metrics.context is not None and clipped.metrics.context.clipped == 2


def test_skipping_every_request_is_an_error_before_any_output(instant_server, tmp_path):
    server = instant_server(max_model_len=100)
    with (
        pytest.raises(ReplayError, match="all 2 scheduled requests need more than"),
        pytest.warns(ContextWarning, match="left out"),
    ):
        replay(frame([500, 600], [10, 10]), config(server.base_url, "skip"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_no_warning_when_everything_fits(instant_server, tmp_path):
    server = instant_server(max_model_len=600)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContextWarning)
        result = replay(frame([10, 20], [5, 5]), config(server.base_url), tmp_path / "run")
    assert result.metrics.context is not None and result.metrics.context.oversized == 0
    assert result.records["oversized"].to_list() == [False, False]


def test_cli_warns_once_up_front_and_takes_fit_context(instant_server, tmp_path):
    server = instant_server(max_model_len=600)
    path = tmp_path / "trace.parquet"
    frame([100, 700, 50, 2000], [10, 10, 10, 10]).write_parquet(path)
    runner = CliRunner()
    result = runner.invoke(
        app, ["replay", str(path), "--url", server.base_url, "--max-gap", "0.01",
              "--no-probe-tokenize", "--out", str(tmp_path / "send")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert lines == [
        "warning: 2 of 4 scheduled requests need more than the server's 600-token context "
        "(prompt + output tokens, up to 2,010): sent as asked, they will fail or stop short — "
        "clip prompts with --max-input-tokens, leave them out or clip them with --fit-context "
        "skip|clip, or serve a larger context"
    ]
    assert "2 requests did not fit the 600-token context: 0 failed" in result.output
    result = runner.invoke(
        app, ["replay", str(path), "--url", server.base_url, "--max-gap", "0.01",
              "--fit-context", "skip", "--out", str(tmp_path / "skip")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "skip" / "summary.json").read_text())
    assert summary["counts"]["scheduled"] == 2 and summary["context"]["skipped"] == 2
    bad = runner.invoke(app, ["replay", str(path), "--fit-context", "trim"])
    assert bad.exit_code == 2
    assert "--fit-context: expected one of send, skip, clip, found 'trim'" in bad.output


# -- the report: the conv sample against the real llama.cpp engine (2,048 tokens a slot) -----


@pytest.mark.engine
def test_conv_sample_against_llama_cpp_counts_its_http_400s_up_front(engine, tmp_path):
    """The first 40 conv requests: 5 have prompts of 2,048 tokens or more. They are announced
    before the run, still sent (HTTP 400 from llama.cpp), marked, and the summary tells them
    apart from the 35 that fit and all succeed."""
    trace = sample_frame("azure-llm-2023-conv")
    seen: list[ContextFit] = []
    cfg = ReplayConfig(
        client=ClientOptions(url=engine.base_url),
        schedule=ScheduleOptions(limit=40, speedup=100, max_gap=0.05, max_output_tokens=8),
        model=engine.model, report=False, progress=False, on_context=seen.append,
    )  # fmt: skip
    result = replay(trace, cfg, tmp_path / "run")
    [fit] = seen
    assert (fit.context_tokens, fit.reported_by) == (
        2048,
        "/props default_generation_settings.n_ctx",
    )
    sched = result.schedule.table
    expected = (sched["input_tokens"] + sched["output_tokens"] > 2048).to_list()
    assert sum(expected) == fit.oversized == 5
    rec = result.records
    assert rec["oversized"].to_list() == expected
    over, fits = rec.filter("oversized"), rec.filter(~pl.col("oversized"))
    assert over["status"].to_list() == [400] * 5 and not over["ok"].any()
    assert fits["ok"].all() and fits.height == 35
    context = result.metrics.context
    assert context is not None
    assert (context.oversized_failed, context.fitting_failed, context.fitting_recorded) == (
        5,
        0,
        35,
    )
    assert result.metrics.counts.failed == 5 and result.metrics.counts.errors_by_kind == {"http": 5}


@pytest.mark.engine
def test_llama_cpp_oversized_outputs_stop_short_and_clip_fits_them(engine, tmp_path):
    """prompt < context < prompt + output: llama.cpp answers 200 but stops at its context
    (`short`); prompt ≥ context: HTTP 400. `clip` makes both fit and complete."""
    requests = frame([100, 2000, 2100], [16, 64, 8])  # need 116, 2064, 2108
    base = dict(model=engine.model, report=False, progress=False, on_context=lambda fit: None)
    sent = replay(requests, ReplayConfig(client=ClientOptions(url=engine.base_url),
                  schedule=ScheduleOptions(max_gap=0.05), **base), tmp_path / "send")  # fmt: skip
    rec = sent.records
    assert rec["oversized"].to_list() == [False, True, True]
    assert rec["status"].to_list() == [200, 200, 400]
    assert rec["output_tokens_server"].to_list()[:2] == [16, 48]  # 2000 + 48 = 2048: stopped
    context = sent.metrics.context
    assert context is not None
    assert (context.oversized_recorded, context.oversized_failed, context.oversized_short) == (
        2,
        1,
        1,
    )
    assert (context.fitting_recorded, context.fitting_failed, context.fitting_short) == (1, 0, 0)

    clipped = replay(requests, ReplayConfig(client=ClientOptions(url=engine.base_url),
                     schedule=ScheduleOptions(max_gap=0.05, fit_context="clip"), **base),
                     tmp_path / "clip")  # fmt: skip
    rec = clipped.records
    assert rec["ok"].all() and rec["oversized"].to_list() == [False] * 3
    assert rec["prompt_tokens_server"].to_list() == [100, 1984, 2040]
    assert rec["output_tokens_server"].to_list() == [16, 64, 8]


def test_capacity_and_compare_load_take_fit_context_and_warn_once(instant_server, tmp_path):
    server = instant_server(max_model_len=600)
    path = tmp_path / "trace.parquet"
    frame([100, 700, 50, 2000, 60, 70], [10] * 6).write_parquet(path)
    runner = CliRunner()
    result = runner.invoke(
        app, ["capacity", str(path), "--url", server.base_url, "--slo", "ttft=5",
              "--max-probes", "2", "--max-gap", "0.01", "--out", str(tmp_path / "cap")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    probes = sorted((tmp_path / "cap").glob("probe-*"))
    assert len(probes) == 2  # two runs, each checked against the context …
    warned = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and warned[0].startswith(
        "warning: 2 of 6 scheduled requests"
    )  # … said once
    for probe in probes:
        assert json.loads((probe / "run.json").read_text())["context"]["oversized"] == 2
    result = runner.invoke(
        app, ["compare-load", str(path), str(path), "--url", server.base_url, "--max-gap", "0.01",
              "--fit-context", "clip", "--out", str(tmp_path / "cmp")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("real", "synthetic"):
        summary = json.loads((tmp_path / "cmp" / name / "summary.json").read_text())
        assert summary["context"]["clipped"] == 2 and summary["context"]["oversized_recorded"] == 0
