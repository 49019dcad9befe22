"""The package face: layout, lazy imports, atomic Parquet, wheel install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import polars as pl
import pytest

from burstlab.errors import InputError, SchemaError
from burstlab.parquet import finalize_atomic, read_metadata, write_atomic
from burstlab.schema import arrow_schema, conform

REPO = Path(__file__).resolve().parents[2]
STAGES = ("traces", "fitting", "synth", "replay", "cards", "engines")


def test_import_burstlab_loads_no_stage():
    code = (
        "import sys, burstlab, burstlab.schema, burstlab.parquet; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('burstlab.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout)
    assert not [m for m in loaded if m.split(".")[1] in STAGES], loaded


def test_all_lists_every_lazy_name():
    """`__all__` spells the lazy names out (static checkers cannot read ``*_LAZY``)."""
    import burstlab

    assert set(burstlab._LAZY) <= set(burstlab.__all__)
    eager = set(burstlab.__all__) - set(burstlab._LAZY)
    assert all(name in vars(burstlab) for name in eager), eager
    assert len(burstlab.__all__) == len(set(burstlab.__all__))


def test_conform_casts_orders_and_fills_optional_columns():
    raw = pl.DataFrame(
        {
            "output_tokens": [5, 0],
            "arrival_s": [0.0, 1.5],
            "input_tokens": [10, 20],
            "source": ["x", "x"],
            "failed": [False, True],
            "junk": [1, 2],
        }
    )
    out = conform(raw, "requests").collect()
    assert out.columns[:4] == ["source", "arrival_s", "input_tokens", "output_tokens"]
    assert out.schema["input_tokens"] == pl.Int32
    assert out["hash_ids"].null_count() == 2
    assert "junk" not in out.columns
    assert out.to_arrow().schema.equals(arrow_schema("requests"))


def test_conform_names_missing_required_columns():
    with pytest.raises(SchemaError, match="arrival_s"):
        conform(pl.DataFrame({"source": ["x"]}), "requests")


def test_input_error_names_file_line_expected_found(tmp_path):
    err = InputError(tmp_path / "a.csv", "bad timestamp", line=7, expected="ISO time", found="'x'")
    assert str(err) == f"{tmp_path / 'a.csv'}, line 7: bad timestamp; expected ISO time, found 'x'"


def test_write_atomic_roundtrips_metadata_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "t.parquet"
    meta = {"rows_read": 3, "rows_kept": 2, "rows_dropped": {"bad": 1}}
    write_atomic(pl.DataFrame({"a": [1, 2]}), dest, meta)
    assert read_metadata(dest) == meta
    assert pl.read_parquet(dest)["a"].to_list() == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_finalize_atomic_streams_and_stamps(tmp_path):
    tmp = tmp_path / "part.tmp.parquet"
    pl.DataFrame({"a": list(range(1000))}).write_parquet(tmp)
    dest = finalize_atomic(tmp, tmp_path / "final.parquet", {"rows_kept": 1000})
    assert not tmp.exists()
    assert read_metadata(dest) == {"rows_kept": 1000}
    assert pl.read_parquet(dest).height == 1000


@pytest.mark.slow
def test_wheel_installs_and_imports_every_stage(tmp_path):
    """Build a real wheel and import every stage from it (not from the source tree)."""
    # Build from a copy of what the wheel is made of: setuptools' in-tree build/ folder could
    # otherwise carry modules deleted from the source into the wheel under test.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for folder in ("burstlab", *STAGES):
        shutil.copytree(
            REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(src),
        ],
        check=True,
    )
    (wheel,) = wheel_dir.glob("burstlab-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    # every package of the source tree (a folder with __init__.py), subpackages included: one
    # missing from pyproject's package list would install a CLI that fails at start-up
    packages = sorted(
        ".".join(("burstlab", *p.parent.relative_to(REPO).parts)).replace(
            "burstlab.burstlab", "burstlab"
        )
        for folder in ("burstlab", *STAGES)
        for p in (REPO / folder).rglob("__init__.py")
        if "__pycache__" not in p.parts
    )
    assert "burstlab.replay.peers" in packages and "burstlab.engines.instant" in packages
    code = (
        "import burstlab, importlib, pathlib; "
        "mods = [importlib.import_module(s) for s in "
        f"{packages!r}]; "
        "assert all(str(pathlib.Path(m.__file__)).startswith("
        + repr(str(target))
        + ") for m in mods), "
        "[m.__file__ for m in mods]; "
        "import burstlab.traces as t; "
        "root = pathlib.Path(t.__file__).parent / 'samples'; "
        "print(sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file()))"
    )
    env = {**os.environ, "PYTHONPATH": f"{target}{os.pathsep}{sysconfig.get_paths()['purelib']}"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    shipped = sorted(
        str(p.relative_to(REPO / "traces" / "samples"))
        for p in (REPO / "traces" / "samples").rglob("*")
        if p.is_file()
    )
    assert len(shipped) == 20 and "azure/PROVENANCE.md" in shipped
    assert out.stdout.strip() == repr(shipped)  # every sample and its provenance is installed


def test_html_report_is_self_contained_escaped_and_atomic(tmp_path):
    import altair as alt

    from burstlab.charts import write_html_report

    chart = alt.Chart(pl.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]})).mark_line()
    table = pl.DataFrame({"name": ["<b>x</b>"], "value": [1.23456789], "ok": [False]})
    dest = write_html_report(
        tmp_path / "r.html",
        title="t & u",
        notes=["a < b"],
        tables=[("caption", table)],
        chart=chart.encode(x="x", y="y"),
    )
    page = dest.read_text()
    assert "cdn.jsdelivr" not in page and "vega-embed" in page  # library inlined: opens offline
    assert "<h1>t &amp; u</h1>" in page and "a &lt; b" in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<td>1.235</td>" in page and "<td class=bad>no</td>" in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
