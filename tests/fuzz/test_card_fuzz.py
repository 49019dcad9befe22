"""Generated bad inputs for `card`: foreign files (random bytes, JSON that is no spec, specs with
a field broken, a CSV, zero bytes, empty and truncated Parquet files, Parquet files whose
burstlab metadata is broken), replay run folders with a file missing, broken or foreign, dataset
ids that are not ingested, and an `out` that already exists.

Every case ends in ONE of: a valid card (README.md in `out`, no validation problem), or a
one-line BurstlabError with `out` as it was before (absent, or its old contents) and no staging
folder left beside it.

Valid targets (a real replay run, a hand-written spec, a synthetic Parquet file) are made once
per module; most cases break them, so 5,000 cases (`make fuzz`) take minutes.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from burstlab.cards import card
from burstlab.cards.hf import CardResult
from burstlab.engines import instant_server
from burstlab.parquet import METADATA_KEY
from burstlab.replay.client import ClientOptions
from burstlab.replay.run import ReplayConfig, replay
from burstlab.replay.schedule import ScheduleOptions
from burstlab.spec import (
    ArrivalSpec,
    Copula,
    Dependence,
    EmpiricalDist,
    FamilyFit,
    LengthSpec,
    Marginal,
    SourceFingerprint,
    WorkloadSpec,
)
from burstlab.synth.export import export
from burstlab.synth.generate import generate
from fuzz.checks import no_partial_outputs, outcome


def log_uniform(lo: float, hi: float) -> Marginal:
    edges = list(np.geomspace(lo, hi, 11))
    return Marginal(EmpiricalDist(edges, [0.1] * 10), lo, hi, (hi - lo) / np.log(hi / lo))


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, Path]:
    """One valid target of each kind: a replay run folder, a spec, a synthetic Parquet file
    and a canonical requests Parquet file."""
    root = tmp_path_factory.mktemp("valid")
    server = instant_server(faults={"http500": 0.2}, seed=1)
    try:
        requests = pl.DataFrame(
            {
                "source": ["fuzz"] * 12,
                "arrival_s": [i * 0.01 for i in range(12)],
                "input_tokens": [10 + i for i in range(12)],
                "output_tokens": [3 + i % 4 for i in range(12)],
                "failed": [False] * 12,
            }
        )
        config = ReplayConfig(
            client=ClientOptions(url=server.base_url),
            schedule=ScheduleOptions(max_gap=0.001),
            probe_tokenize=False, report=False, progress=False, on_context=lambda fit: None,
        )  # fmt: skip
        replay(requests, config, root / "run")
    finally:
        server.stop()
    # a hand-written spec whose source is not available here: its card skips the fidelity part
    spec = WorkloadSpec(
        SourceFingerprint("fuzz-source", 1000, 120.0, 2.0, window=[0.0, 120.0]),
        ArrivalSpec(renewal=FamilyFit("gamma", {"a": 0.9, "scale": 0.5}, "given")),
        LengthSpec(
            log_uniform(10, 400), log_uniform(2, 100), Dependence(0.2, Copula("gaussian", 0.2))
        ),
    )
    spec_path = spec.save(root / "spec.json")
    workload = generate(spec, duration_s=20, seed=1)
    synth = export(workload.frame, root / "synth.parquet", "parquet", metadata=workload.metadata())
    source = root / "source.parquet"
    requests.with_columns(arrival_s=pl.col("arrival_s") * 50).write_parquet(source)
    return {"run": root / "run", "spec": spec_path, "synth": synth, "source": source}


# -- strategies -------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=8),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6),
                                                                       inner, max_size=3)),
    max_leaves=6,
)  # fmt: skip


def paths_of(doc: Any, at: tuple = ()) -> list[tuple]:
    """Every key path inside a JSON document (dict keys and list indices)."""
    out = [at]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths_of(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths_of(v, (*at, i))
    return out


def broken(draw, doc: Any) -> Any:
    """`doc` with one value replaced, one key removed, or the whole document replaced."""
    doc = json.loads(json.dumps(doc))
    paths = [p for p in paths_of(doc) if p]
    how = draw(st.sampled_from(["replace", "remove", "whole"] if paths else ["whole"]))
    if how == "whole":
        return draw(JSON_VALUES)
    path = draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if how == "remove" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return doc


def write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, allow_nan=True))


@st.composite
def targets(draw, valid: dict[str, Path], root: Path) -> str:
    """A card target under `root` (or a dataset id): broken copies of the valid ones, foreign
    files and folders."""
    kind = draw(st.sampled_from([
        "run", "run", "spec", "spec", "synth", "source", "random", "json", "csv", "zero",
        "truncated", "folder", "dataset-id",
    ]))  # fmt: skip
    if kind == "dataset-id":
        return draw(st.sampled_from(["azure-llm-2023-conv", "nope", "", ".", "a/b", "x.y"]))
    if kind == "run":
        run = root / "run"
        shutil.copytree(valid["run"], run)
        part = sorted((run / "records").glob("*.parquet"))[0]
        what = draw(st.sampled_from([
            "intact", "no-summary", "no-run", "summary", "run-json", "garbage-summary",
            "no-records", "empty-records", "garbage-part", "truncated-part", "foreign-part",
        ]))  # fmt: skip
        if what == "no-summary":
            (run / "summary.json").unlink()
        elif what == "no-run":
            (run / "run.json").unlink()
        elif what in ("summary", "run-json"):
            path = run / ("summary.json" if what == "summary" else "run.json")
            write_json(path, broken(draw, json.loads(path.read_text())))
        elif what == "garbage-summary":
            (run / "summary.json").write_bytes(draw(st.binary(max_size=200)))
        elif what == "no-records":
            shutil.rmtree(run / "records")
        elif what == "empty-records":
            part.unlink()
        elif what == "garbage-part":
            part.write_bytes(draw(st.binary(max_size=500)))
        elif what == "truncated-part":
            data = part.read_bytes()
            part.write_bytes(data[: draw(st.integers(0, len(data) - 1))])
        elif what == "foreign-part":
            pl.DataFrame({"req_id": [1, 2], "x": ["a", "b"]}).write_parquet(part)
        return str(run)
    if kind == "spec":
        path = root / "spec.json"
        doc = json.loads(valid["spec"].read_text())
        write_json(path, doc if draw(st.integers(0, 9)) == 0 else broken(draw, doc))
        return str(path)
    if kind in ("synth", "source"):
        path = root / f"{kind}.parquet"
        table = pq.read_table(valid[kind])
        meta = json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))
        what = draw(st.sampled_from(["intact", "meta", "meta-garbage", "no-rows", "columns"]))
        if what == "meta":
            meta = broken(draw, meta)
        if what == "no-rows":
            table = table.slice(0, 0)
        if what == "columns":
            table = table.drop_columns(draw(st.lists(st.sampled_from(table.column_names),
                                                     min_size=1, max_size=2, unique=True)))  # fmt: skip
        raw = json.dumps(meta, allow_nan=True).encode()
        if what == "meta-garbage":
            raw = draw(st.binary(max_size=50))
        # the schema metadata lands in the file footer's key-value metadata, which burstlab reads
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), METADATA_KEY: raw})
        pq.write_table(table, path)
        return str(path)
    suffix = draw(st.sampled_from([".parquet", ".json", ".csv", "", ".txt"]))
    path = root / f"target{suffix}"
    if kind == "folder":
        path.mkdir()
        if draw(st.booleans()):
            (path / "run.json").mkdir()  # run.json that is a folder
        return str(path)
    if kind == "random":
        path.write_bytes(draw(st.binary(max_size=1000)))
    elif kind == "json":
        write_json(path, draw(JSON_VALUES))
    elif kind == "csv":
        path.write_text("arrival_s,input_tokens,output_tokens\n0,1,2\n")
    elif kind == "zero":
        path.write_bytes(b"")
    else:  # truncated Parquet
        data = valid["source"].read_bytes()
        path.write_bytes(data[: draw(st.integers(0, len(data) - 1))])
    return str(path)


# -- the property -----------------------------------------------------------------------------


@given(data=st.data())
def test_card_generated_targets(valid, data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        target = data.draw(targets(valid, root))
        out = root / "cards" / "card"
        before = data.draw(st.sampled_from(["absent", "absent", "empty", "full", "file"]))
        overwrite = data.draw(st.booleans())
        if before in ("empty", "full"):
            out.mkdir(parents=True)
        if before == "full":
            (out / "old.txt").write_text("old card")
        if before == "file":
            out.parent.mkdir(parents=True)
            out.write_text("a file")
        spec = str(valid["spec"]) if data.draw(st.integers(0, 4)) == 0 else None

        def call() -> CardResult:
            return card(target, out, data_dir=root / "data", overwrite=overwrite,
                        duration_s=data.draw(st.sampled_from([None, 10.0, 0.0, -1.0, math.nan])),
                        seed=data.draw(st.sampled_from([0, 1, -1, 2**40])), spec=spec)  # fmt: skip

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = outcome("card", call)
        if result.error is None:
            made = result.result
            assert made.valid and made.out_dir == out and (out / "README.md").is_file()
            assert not (out / "old.txt").exists()
        elif before == "absent":
            assert not out.exists(), f"{result.error} but {out} was left behind"
        elif before == "full":
            assert (out / "old.txt").read_text() == "old card"  # untouched
        elif before == "file":
            assert out.read_text() == "a file"
        no_partial_outputs(root / "cards")
