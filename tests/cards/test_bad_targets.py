"""Card targets that only look like one (found by tests/fuzz/test_card_fuzz.py): one line naming
the file and what is wrong, and no card folder — never a polars or Vega error from deep inside a
chart. Plus the optional extra: without huggingface_hub, `card` says which extra to install."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from burstlab.cards import card
from burstlab.errors import InputError, SchemaError, UsageError
from burstlab.parquet import METADATA_KEY


def requests(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source": ["synth:fixture"] * n,
            "arrival_s": [i * 0.5 for i in range(n)],
            "input_tokens": [10 + i for i in range(n)],
            "output_tokens": [5 + i for i in range(n)],
            "failed": [False] * n,
        }
    )


def with_metadata(frame: pl.DataFrame, path: Path, meta: dict) -> Path:
    table = frame.to_arrow()
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
    pq.write_table(table, path)
    return path


def test_synthetic_parquet_without_rows(tmp_path):
    """Before: ValueError 'Vega-Lite to PNG conversion failed: SVG has an invalid size'."""
    path = with_metadata(requests(0), tmp_path / "load.parquet", {"source": "synth:x", "seed": 1})
    with pytest.raises(InputError) as info:
        card(path, tmp_path / "card")
    assert str(info.value) == (
        f"{path}: the requests table has no rows; a card describes at least one"
    )
    assert not (tmp_path / "card").exists()


def test_synthetic_parquet_without_a_required_column(tmp_path):
    """Before: polars ColumnNotFoundError '"arrival_s" not found' from the rate chart."""
    path = with_metadata(
        requests(5).drop("arrival_s"), tmp_path / "load.parquet", {"source": "synth:x"}
    )
    with pytest.raises(
        SchemaError, match=r"requests table lacks required column\(s\) \['arrival_s'\]"
    ):
        card(path, tmp_path / "card")
    assert not (tmp_path / "card").exists()


def test_synthetic_parquet_whose_seed_is_not_a_number(tmp_path):
    """Before: ValueError from int('seven')."""
    path = with_metadata(
        requests(5), tmp_path / "load.parquet", {"source": "synth:x", "seed": "seven"}
    )
    with pytest.raises(InputError, match="the burstlab metadata's seed is not a whole number"):
        card(path, tmp_path / "card")


def test_source_parquet_with_null_arrivals_or_broken_metadata(tmp_path):
    frame = requests(4).with_columns(source=pl.lit("fixture"))
    nulls = frame.with_columns(arrival_s=pl.Series([0.0, None, 1.0, 2.0]))
    path = with_metadata(nulls, tmp_path / "nulls.parquet", {"source": "fixture"})
    with pytest.raises(InputError, match=r"required column\(s\) \['arrival_s'\] hold nulls"):
        card(path, tmp_path / "card")
    garbage = tmp_path / "garbage.parquet"
    table = frame.to_arrow().replace_schema_metadata({METADATA_KEY: b"\xff{not json"})
    pq.write_table(table, garbage)
    with pytest.raises(InputError, match=r"garbage\.parquet: not a readable Parquet file"):
        card(garbage, tmp_path / "card")
    assert not (tmp_path / "card").exists()


def test_a_source_name_in_the_metadata_never_leaves_the_card_folder(tmp_path):
    """The metadata's `source` names the data file inside the card: a name like '../../x'
    used to put the copy outside the card folder; the file's own name is used instead."""
    path = with_metadata(
        requests(30).with_columns(source=pl.lit("fixture")),
        tmp_path / "trace.parquet",
        {"source": "../../escape", "table": "requests"},
    )
    made = card(path, tmp_path / "out" / "card")
    assert made.valid
    assert made.data_files[0] == "data/trace.parquet"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "trace.parquet"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["card"]


def test_card_out_inside_a_file(tmp_path):
    """Before: FileExistsError from creating the staging folder beside `out`."""
    (tmp_path / "afile").write_text("x")
    path = with_metadata(requests(5), tmp_path / "load.parquet", {"source": "synth:x"})
    with pytest.raises(UsageError) as info:
        card(path, tmp_path / "afile" / "card")
    assert (
        str(info.value)
        == f"out: {tmp_path / 'afile'} is a file; the card folder cannot be made inside it"
    )
    assert (tmp_path / "afile").read_text() == "x"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A real, small replay run against the instant server."""
    from burstlab.engines.instant import instant_server
    from burstlab.replay.client import ClientOptions
    from burstlab.replay.goodput import parse_slo
    from burstlab.replay.run import ReplayConfig, replay
    from burstlab.replay.schedule import ScheduleOptions

    out = tmp_path_factory.mktemp("run") / "run"
    with instant_server() as server:
        config = ReplayConfig(
            client=ClientOptions(url=server.base_url), schedule=ScheduleOptions(max_gap=0.01),
            slo=parse_slo("ttft=1"), probe_tokenize=False, report=False, progress=False,
        )  # fmt: skip
        replay(requests(8).with_columns(source=pl.lit("fixture")), config, out)
    return out


def broken_run(run_dir: Path, tmp_path: Path, name: str, change) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    doc = json.loads((copy / name).read_text())
    change(doc)
    (copy / name).write_text(json.dumps(doc, allow_nan=True))
    return copy


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        # found by the card fuzz suite: TypeError "type list doesn't define __round__ method"
        ("summary.json", lambda d: d["full"]["ttft_s"].update(mean=[1]),
         "summary.json: not a burstlab run summary: full.ttft_s.mean is [1]; expected a finite number"),
        ("summary.json", lambda d: d["counts"].update(failed="2"),
         "summary.json: not a burstlab run summary: counts.failed is '2'; expected a whole number"),
        ("summary.json", lambda d: d.update(duration_s=float("nan")),
         "summary.json: not valid JSON (NaN is not a JSON number (burstlab writes strict JSON))"),
        ("summary.json", lambda d: d.pop("steady"),
         "summary.json: not a burstlab run summary; expected the key 'steady'"),
        # AttributeError "'NoneType' object has no attribute 'get'" / "'list' object …"
        ("run.json", lambda d: d.update(target=None, schedule=[1]),
         "run.json, schedule: not a burstlab run document; expected an object"),
        ("run.json", lambda d: d["engine"].update(models=[{"id": "x"}]),
         "run.json, engine.models: not a burstlab run document; expected /v1/models as the server answered it"),
        ("run.json", lambda d: d["slo"].update(ttft="fast"),
         "run.json, slo.ttft: not a burstlab run document; expected seconds, found 'fast'"),
    ],
)  # fmt: skip
def test_run_folder_with_a_broken_document(run_dir, tmp_path, name, change, expected):
    target = broken_run(run_dir, tmp_path, name, change)
    with pytest.raises(InputError) as info:
        card(target, tmp_path / "card")
    assert str(info.value) == f"{target}/{expected}"
    assert not (tmp_path / "card").exists()


def test_run_folder_with_a_null_target_still_makes_a_card(run_dir, tmp_path):
    """`"target": null` is no target recorded, not a crash (AttributeError before)."""
    target = broken_run(run_dir, tmp_path, "run.json", lambda d: d.update(target=None))
    assert card(target, tmp_path / "card").valid
