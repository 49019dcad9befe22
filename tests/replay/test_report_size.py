"""A replay report renders for runs larger than altair's 5,000-row embedding limit."""

from __future__ import annotations

from dataclasses import replace

from test_faults import config, requests_frame

from burstlab.replay.run import replay


def test_report_of_a_run_with_many_requests(instant_server, tmp_path):
    server = instant_server()
    cfg = replace(config(server.base_url), report=True)
    result = replay(requests_frame(1_600, rate=2_000.0, output_tokens=2), cfg, tmp_path / "run")
    assert result.metrics["counts"]["completed"] == 1_600
    page = (tmp_path / "run" / "report.html").read_text()
    assert "TTFT / TPOT / E2E over time" in page and "<td>1600</td>" in page
