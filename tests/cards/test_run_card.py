"""Run cards from a real replay: burstlab's timed client over HTTP on 127.0.0.1 against the
instant OpenAI-compatible server (10% injected HTTP 500s), then `cards.card(run_dir)`."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest
import yaml

from burstlab import cards
from burstlab.cards import card_kind
from burstlab.cards.hf import check_card
from burstlab.errors import InputError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from burstlab.engines.instant import instant_server
    from burstlab.replay.client import ClientOptions
    from burstlab.replay.goodput import parse_slo
    from burstlab.replay.run import ReplayConfig, replay
    from burstlab.replay.schedule import ScheduleOptions
    from burstlab.traces import sample_frame

    out = tmp_path_factory.mktemp("run") / "run"
    server = instant_server(faults={"http500": 0.1}, seed=3)
    try:
        config = ReplayConfig(
            client=ClientOptions(url=server.base_url),
            schedule=ScheduleOptions(window=(0.0, 60.0), speedup=20, limit=120),
            slo=parse_slo("ttft=0.5,e2e=2"),
            source="azure-llm-2023-conv",
            progress=False,
            report=False,
        )
        replay(sample_frame("azure-llm-2023-conv"), config, out)
    finally:
        server.stop()
    return out


@pytest.mark.slow
def test_run_card_names_engine_load_slos_and_results(run_dir, tmp_path):
    assert card_kind(run_dir) == ("run", run_dir)
    card = cards.card(run_dir, tmp_path / "card")
    assert card.kind == "run" and card.problems == [] and check_card(card.out_dir) == []
    summary = json.loads((run_dir / "summary.json").read_text())
    counts = summary["counts"]
    assert counts["scheduled"] == 120
    assert 0 < counts["failed"] < 120  # the injected 500s are data, not a crash

    text = card.readme.read_text(encoding="utf-8")
    meta = yaml.safe_load(re.match(r"---\n(.*?)\n---\n", text, re.S).group(1))
    assert meta["license"] == "cc-by-4.0"  # inherited from the replayed Azure trace
    assert meta["size_categories"] == ["n<1K"]
    [config] = meta["configs"]
    assert config["data_files"] == [{"split": "train", "path": "data/records/*.parquet"}]
    records = pl.read_parquet(card.out_dir / "data" / "records" / "*.parquet")
    assert records.height == 120
    assert int((~records["ok"]).sum()) == counts["failed"]

    assert "| model sent | `burstlab-instant` |" in text
    assert "| window (trace s) | [0.0, 60.0] |" in text and "| speedup | 20 |" in text
    assert "ttft ≤ 500 ms, e2e ≤ 2000 ms (service-anchored)" in text
    good = summary["goodput"]
    assert f"| attainment (good / issued) | {round(good['attainment'], 4):.3g} |" in text
    row = (
        f"| 120 | {counts['issued']} | {counts['completed']} | {counts['failed']} | "
        f"{counts['dropped']} | {counts['late']} |"
    )
    assert row in text
    assert "| error kind | requests |" in text
    p99 = summary["full"]["ttft_s"]["p99"] * 1000
    ttft_row = re.search(r"\| TTFT \(first token − sent\) \| (\d+) \| ([^\n]+) \|", text)
    assert int(ttft_row.group(1)) == counts["completed"]
    assert float(ttft_row.group(2).split(" | ")[3]) == pytest.approx(
        p99, rel=5e-3
    )  # 3 significant digits
    assert "burstlab's instant test server" in text
    assert (card.out_dir / "charts" / "run.png").read_bytes()[:4] == b"\x89PNG"
    assert (card.out_dir / "data" / "run.json").is_file()


def test_run_card_rejects_an_unfinished_run(run_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text((run_dir / "run.json").read_text())
    with pytest.raises(InputError, match=r"summary\.json: missing"):
        cards.card(broken, tmp_path / "out")


def test_run_card_says_how_many_requests_did_not_fit_the_context(tmp_path):
    """Oversized requests sent anyway are a caveat of the run: how many, how they fared."""
    from burstlab.engines.instant import instant_server
    from burstlab.replay.client import ClientOptions
    from burstlab.replay.run import ReplayConfig, replay
    from burstlab.replay.schedule import ScheduleOptions

    requests = pl.DataFrame(
        {
            "source": ["fixture"] * 6,
            "arrival_s": [i * 0.01 for i in range(6)],
            "input_tokens": [10, 20, 500, 30, 900, 40],
            "output_tokens": [5] * 6,
            "failed": [False] * 6,
        }
    )
    with instant_server(max_model_len=256) as server:
        config = ReplayConfig(
            client=ClientOptions(url=server.base_url),
            schedule=ScheduleOptions(max_gap=0.01),
            probe_tokenize=False, report=False, progress=False, on_context=lambda fit: None,
        )  # fmt: skip
        replay(requests, config, tmp_path / "run")
    card = cards.card(tmp_path / "run", tmp_path / "card")
    text = card.readme.read_text(encoding="utf-8")
    assert (
        "- 2 scheduled requests needed more than the server's 256-token context (prompt + output "
        "tokens) and were sent anyway: 0 of them failed and 0 stopped short (records: "
        "`oversized`)."
    ) in text
