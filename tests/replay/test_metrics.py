"""The metric dictionary and goodput on hand-computed records (numbers worked out below)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from burstlab.errors import UsageError
from burstlab.replay.goodput import SLO, goodput, parse_slo
from burstlab.replay.metrics import per_request, summarize, token_gaps, vllm_keys
from burstlab.replay.records import chunk_tokens, records_frame
from burstlab.replay.summary import RunSummary


def row(req_id, intended, sent, first, end, times, tokens, *, ok=True, kind=None, status=200,
        out_server=None, dropped=False, prompt_client=10, prompt_server=10):  # fmt: skip
    lag = None if sent is None else sent - intended
    return (
        req_id, None, None, intended, intended, sent, first, first, end, times,
        [1] * len(times), tokens, status, ok, kind, None if ok else kind, "length" if ok else None,
        dropped, False, lag, 0.0 if sent is not None else None, 10, prompt_client, prompt_server,
        4, len(times), out_server, 0, 1, None,
    )  # fmt: skip


@pytest.fixture
def records():
    return records_frame(
        [
            # TTFT 0.10, sched 0.11; E2E 0.17, sched 0.18; 4 tokens in chunks 1,1,2
            row(0, 0.0, 0.01, 0.11, 0.18, [0.11, 0.13, 0.17], [1, 1, 2], out_server=4),
            # one chunk of 2 tokens: TTFT 0.5 = E2E → TPOT 0
            row(1, 1.0, 1.0, 1.5, 1.5, [1.5], [2], out_server=2),
            row(2, 2.0, 2.0, None, 2.01, [], [], ok=False, kind="http", status=500),
            row(
                3,
                3.0,
                None,
                None,
                3.0,
                [],
                [],
                ok=False,
                kind="dropped",
                status=None,
                dropped=True,
                prompt_server=None,
            ),
        ]
    )


def test_per_request_latencies(records):
    pr = per_request(records)
    assert pr["ttft_s"].to_list()[:2] == pytest.approx([0.10, 0.5])
    assert pr["ttft_sched_s"].to_list()[:2] == pytest.approx([0.11, 0.5])
    assert pr["e2e_s"].to_list()[:2] == pytest.approx([0.17, 0.5])
    assert pr["e2e_sched_s"].to_list()[:2] == pytest.approx([0.18, 0.5])
    assert pr["tpot_s"].to_list()[:2] == pytest.approx([0.07 / 3, 0.0])
    assert pr["ttft_s"].to_list()[2:] == [None, None]  # failures have no latency


def test_itl_spreads_chunk_gaps_over_their_tokens_icl_keeps_them_raw(records):
    itl, icl = token_gaps(records)
    # r0: gap 0.02 (1 token), gap 0.04 over 2 tokens → 0.02, 0.02; r1: 1 extra first-chunk token → 0
    assert sorted(itl.to_list()) == pytest.approx([0.0, 0.02, 0.02, 0.02])
    assert sorted(icl.to_list()) == pytest.approx([0.02, 0.04])


def test_summary_counts_rates_and_distributions(records):
    s = summarize(records, scheduled=5)
    assert asdict(s.counts) == {
        "scheduled": 5, "recorded": 4, "not_sent": 1, "issued": 3, "completed": 2, "failed": 1,
        "dropped": 1, "late": 0, "resent": 0, "errors_by_kind": {"http": 1},
    }  # fmt: skip
    assert s["duration_s"] == pytest.approx(3.0)
    assert s["request_throughput_rps"] == pytest.approx(2 / 3.0)
    assert s["total_output_tokens"] == 6
    assert s["output_throughput_tps"] == pytest.approx(2.0)
    assert s["offered_rate_rps"] == pytest.approx(3 / 3.0)
    assert s["full"]["ttft_s"]["mean"] == pytest.approx(0.3)
    assert s["full"]["ttft_s"]["p50"] == pytest.approx(0.3)
    assert s["full"]["tpot_s"]["count"] == 2
    assert s["full"]["itl_s"]["mean"] == pytest.approx(0.015)
    assert s["full"]["icl_s"]["mean"] == pytest.approx(0.03)
    assert s["schedule_lag_s"]["max"] == pytest.approx(0.01)
    assert s["peak_in_flight"] == 1
    # client counted chunks (3, 1), server said 4, 2 → every output count disagrees
    assert s["tokens"]["output_mismatch_rate"] == 1.0
    assert s["tokens"]["prompt_mismatch_rate"] == 0.0
    # steady window = intended 0.3 … 2.7: only request 1 of the successes
    assert s["steady"]["window_s"] == pytest.approx([0.3, 2.7])
    assert s["steady"]["completed"] == 1
    assert s["steady"]["ttft_s"]["mean"] == pytest.approx(0.5)
    # request 1 ended at 1.5 s, inside 0.3 … 2.7: 1 completion and 2 tokens over 2.4 s
    assert s["steady"]["request_throughput_rps"] == pytest.approx(1 / 2.4)
    assert s["steady"]["output_throughput_tps"] == pytest.approx(2 / 2.4)
    # the typed summary is exactly what summary.json holds, and reads back unchanged
    assert RunSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert s.full["ttft_s"].p50 == pytest.approx(0.3) and s.counts.completed == 2


def test_vllm_key_names_and_units(records):
    s = summarize(records)
    v = vllm_keys(s)
    assert v["completed"] == 2 and v["failed"] == 2
    assert v["mean_ttft_ms"] == pytest.approx(300.0)
    assert v["median_e2el_ms"] == pytest.approx(335.0)
    assert v["p99_itl_ms"] == pytest.approx(s["full"]["itl_s"]["p99"] * 1000)
    assert v["request_goodput"] is None
    assert {"mean_tpot_ms", "std_ttft_ms", "p99_e2el_ms", "total_token_throughput"} <= set(v)


def test_goodput_attainment_counts_errors_and_drops_as_bad(records):
    pr = per_request(records)
    g = goodput(pr, SLO(ttft=0.2), duration_s=3.0)
    assert (g["good"], g["requests"]) == (1, 4)
    assert g["attainment"] == pytest.approx(0.25)
    assert g["goodput_rps"] == pytest.approx(1 / 3)
    assert g["goodput_output_tps"] == pytest.approx(4 / 3)
    both = goodput(pr, SLO(ttft=1.0, tpot=0.01), duration_s=3.0)
    # r0 TPOT 0.0233 fails, r1 passes both
    assert both["pass_rate"] == {"ttft": 0.5, "tpot": 0.25}
    assert both["good"] == 1
    sched = goodput(pr, SLO(ttft=0.105, anchor="schedule"), duration_s=3.0)
    assert sched["good"] == 0  # TTFT 0.10 passes service-anchored, 0.11 fails schedule-anchored
    assert goodput(pr, SLO(ttft=0.105), duration_s=3.0)["good"] == 1


def test_parse_slo():
    slo = parse_slo("ttft=0.5, tpot=50ms,e2e=10s", "schedule")
    assert (slo.ttft, slo.tpot, slo.e2e, slo.anchor) == (0.5, 0.05, 10.0, "schedule")
    assert parse_slo(None) is None
    for bad, why in (
        ("ttft", "expected KEY=SECONDS, found 'ttft'"),
        ("itl=1", "unknown key 'itl'"),
        ("ttft=abc", "cannot read the value of 'ttft=abc'"),
        ("e2e=-1", "must be > 0 seconds"),
        ("ttft=1,ttft=2", "'ttft' is given twice"),
    ):
        with pytest.raises(UsageError, match=f"^slo: .*{why}") as caught:
            parse_slo(bad)
        assert caught.value.param == "slo"
    with pytest.raises(UsageError, match="slo_anchor: expected service or schedule"):
        parse_slo("ttft=1", "wall")


def test_chunk_tokens_spreads_server_total_by_characters():
    assert chunk_tokens([3, 1, 4], None) == [1, 1, 1]
    assert chunk_tokens([3, 1, 4], 3) == [1, 1, 1]
    assert chunk_tokens([3, 1, 4], 8) == [3, 2, 3]
    assert sum(chunk_tokens([5, 5, 5, 1], 40)) == 40
    assert chunk_tokens([], 5) == []


def test_lag_over_time_bins(records):
    s = summarize(records)
    lag = s["schedule_lag_over_time"]
    assert lag["bin_s"] == 0.05  # span 3 s → ~100 bins of 0.05 s (1-2-5 steps)
    assert lag["t"] == pytest.approx([0.0, 1.0, 2.0])  # the three sent requests' bins
    assert lag["max"] == pytest.approx([0.01, 0.0, 0.0])
    assert lag["n"] == [1, 1, 1]
