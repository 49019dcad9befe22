"""Generated bad inputs for `replay`: requests tables that are empty, lack columns, hold
negative / huge / NaN / null lengths and times, all failed rows, duplicated times, one row;
foreign files given as SOURCE (random bytes, a spec JSON, a CSV, a folder, a truncated or empty
Parquet file); and replay options at their extremes (speedup, window, limit, max tokens, gap
cap, context fitting, concurrency, policy).

Every case ends in ONE of: a one-line BurstlabError and no run folder, or a run folder whose
summary.json is strict JSON with finite numbers, whose counts reconcile with its records
(completed + failed + dropped = recorded = scheduled), with no partial outputs.

Replays go to one instant server per module on 127.0.0.1, which reports a small context
(`CONTEXT` tokens) so that oversized requests are common. Schedules stay small and never wait:
at most `MAX_ROWS` rows a case and an idle-gap cap of a few ms; lengths that would reach the
server unclipped are drawn small, so 5,000 cases (`make fuzz`) take minutes, not hours.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import math
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from burstlab.engines import instant_server
from burstlab.replay import client as client_module
from burstlab.replay.cli_common import read_requests as _requests
from burstlab.replay.client import ClientOptions
from burstlab.replay.goodput import parse_slo
from burstlab.replay.run import ContextWarning, ReplayConfig, RunResult, replay
from burstlab.replay.schedule import ScheduleOptions
from fuzz.checks import _refuse, finite_json, finite_outputs, no_partial_outputs, outcome

#: The context the module's instant server reports in /v1/models (tokens).
CONTEXT = 1024
#: Most rows a generated table has (and so requests a case sends).
MAX_ROWS = 20
REQUIRED = ("source", "arrival_s", "input_tokens", "output_tokens", "failed")


@pytest.fixture(scope="module")
def server():
    handle = instant_server(max_model_len=CONTEXT)
    yield handle
    handle.stop()


@contextlib.contextmanager
def _light_runtime() -> Iterator[None]:
    """`client.quiet_runtime` without its two full garbage collections (about 60 ms each in a
    process this size: half of a small case's time). The collector is still off for the run;
    what it keeps a clean heap for (pacing precision) is not what this suite checks."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@pytest.fixture(scope="module", autouse=True)
def _fast_runs():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(client_module, "quiet_runtime", _light_runtime)
        yield


# -- strategies -------------------------------------------------------------------------------

EXTREME_FLOATS = st.sampled_from(
    [0.0, -0.0, 1e-300, -1.0, 1e9, 1e300, -1e300, math.inf, -math.inf, math.nan]
)
SMALL_LENGTHS = st.integers(1, 300)
HUGE_LENGTHS = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.sampled_from([0, 1, CONTEXT - 1, CONTEXT, CONTEXT + 1, 2**21, 2**21 + 1, 2**31 - 1]),
)
#: What can be wrong with a requests table; a case has none to three of these.
TABLE_FAULTS = (
    "empty", "one-row", "missing-column", "negative-lengths", "zero-lengths", "huge-lengths",
    "null-lengths", "float-lengths", "nan-times", "null-times", "inf-times", "huge-times",
    "negative-times", "duplicate-times", "unsorted-times", "all-failed", "some-failed",
    "sessions", "hash-ids", "null-source", "extra-columns",
)  # fmt: skip


@st.composite
def requests_tables(draw, *, bounded_in: bool, bounded_out: bool) -> pl.DataFrame:
    """A requests table of 0..MAX_ROWS rows with none to three of TABLE_FAULTS. `bounded_*`:
    the options clip that length, so it may be huge; otherwise it stays small."""
    faults = draw(st.sets(st.sampled_from(TABLE_FAULTS), max_size=3))
    n = 0 if "empty" in faults else 1 if "one-row" in faults else draw(st.integers(1, MAX_ROWS))
    step = draw(st.sampled_from([0.01, 0.0, 1.0, 1e6]))
    arrivals: list[Any] = [i * step for i in range(n)]

    def some(values: list[Any], strategy) -> list[Any]:
        """`values` with a few (at least one) replaced by draws from `strategy`."""
        if not values:
            return values
        at = draw(st.lists(st.integers(0, len(values) - 1), min_size=1, max_size=3))
        return [draw(strategy) if i in at else v for i, v in enumerate(values)]

    if "duplicate-times" in faults:
        arrivals = [arrivals[0] if arrivals else 0.0] * n
    if "unsorted-times" in faults:
        arrivals = draw(st.permutations(arrivals))
    for fault, strategy in (
        ("nan-times", st.just(math.nan)), ("null-times", st.none()),
        ("inf-times", st.sampled_from([math.inf, -math.inf])),
        ("huge-times", st.sampled_from([1e300, -1e300, 1e18, 2.0**63])),
        ("negative-times", st.floats(-1e6, -1e-9)),
    ):  # fmt: skip
        if fault in faults:
            arrivals = some(arrivals, strategy)

    def lengths(bounded: bool) -> list[Any]:
        values: list[Any] = draw(st.lists(SMALL_LENGTHS, min_size=n, max_size=n))
        if "negative-lengths" in faults:
            values = some(values, st.integers(-(2**31), -1))
        if "zero-lengths" in faults:
            values = some(values, st.just(0))
        if "huge-lengths" in faults and bounded:
            values = some(values, HUGE_LENGTHS)
        if "null-lengths" in faults:
            values = some(values, st.none())
        return values

    data: dict[str, Any] = {
        "source": [None if "null-source" in faults else "fuzz"] * n,
        "arrival_s": arrivals,
        "input_tokens": lengths(bounded_in),
        "output_tokens": lengths(bounded_out),
        "failed": [False] * n,
    }
    if "all-failed" in faults:
        data["failed"] = [True] * n
    elif "some-failed" in faults:
        data["failed"] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    if "sessions" in faults:
        data["session_id"] = draw(
            st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n)
        )
        data["source_latency_s"] = draw(st.lists(st.one_of(st.none(), EXTREME_FLOATS,
                                        st.floats(0, 10)), min_size=n, max_size=n))  # fmt: skip
    if "hash-ids" in faults:
        data["hash_ids"] = draw(st.lists(st.lists(st.integers(0, 50), max_size=4), min_size=n,
                                         max_size=n))  # fmt: skip
    if "extra-columns" in faults:
        data["model"] = ["m"] * n
        data["junk"] = list(range(n))
    frame = pl.DataFrame(data, strict=False)
    if "float-lengths" in faults:  # lengths as floats: fractions, NaN, inf
        frame = frame.with_columns(
            input_tokens=pl.col("input_tokens").cast(pl.Float64)
            / draw(st.sampled_from([3.0, 0.0, -0.0, 1e-300]))
        )
    if "missing-column" in faults:
        frame = frame.drop(draw(st.sampled_from(REQUIRED)))
    return frame


def pick(draw, extreme: bool, valid: list[Any], bad: list[Any]) -> Any:
    """A valid option value, or, in an extreme case, also a bad one."""
    return draw(st.sampled_from(valid + bad if extreme else valid))


@st.composite
def cases(draw) -> tuple[pl.DataFrame, ReplayConfig]:
    """A requests table and a replay config; one case in three may also have options at or
    past their extremes."""
    x = draw(st.integers(0, 2)) == 0
    fit = draw(st.sampled_from(["send", "skip", "clip"]))
    max_out = pick(draw, x, [None, 1, 2, 64], [2**31 - 1, 0, -1])
    max_in = pick(draw, x, [None, 1, 7, 512], [2**21, 2**31 - 1, 0, -3])
    # what reaches the server unclipped stays small: at most MAX_ROWS × a few hundred tokens
    bounded_out = fit != "send" or (max_out is not None and 1 <= max_out <= 64)
    bounded_in = fit != "send" or (max_in is not None and 1 <= max_in <= 512)
    frame = draw(requests_tables(bounded_in=bounded_in, bounded_out=bounded_out))
    window = pick(draw, x, [None, (0.0, 50.0), (-math.inf, math.inf), (0.0, 1e-9)],
                  [draw(st.tuples(EXTREME_FLOATS, EXTREME_FLOATS))])  # fmt: skip
    schedule = ScheduleOptions(
        window=window,
        speedup=pick(draw, x, [1.0, 10.0, 0.5, 1e-9, 1e9], [0.0, -1.0, math.nan, math.inf]),
        max_gap=pick(draw, x, [0.001, 0.0, 0.003], [-1.0, math.nan, math.inf]),
        limit=pick(draw, x, [None, 1, 3, MAX_ROWS], [0, -1]),
        sessions=draw(st.booleans()),
        max_input_tokens=max_in,
        max_output_tokens=max_out,
        min_output_tokens=pick(draw, x, [1, 2], [0, 2**31]),
        skip_failed=draw(st.booleans()),
        fit_context=fit,  # type: ignore[arg-type]
    )
    config = ReplayConfig(
        client=ClientOptions(
            url="",  # the module's server, set in the test
            endpoint=draw(st.sampled_from(["completions", "chat"])),
            policy=draw(st.sampled_from(["send-late", "drop"])),
            late_after_s=pick(draw, x, [0.005, 0.0, 1.0], [-1.0, math.nan]),
            max_concurrency=pick(draw, x, [None, 1, 3], [0, -2]),
            timeout_s=pick(draw, x, [30.0], [0.0, math.inf]),
        ),
        schedule=schedule,
        probe_tokenize=draw(st.booleans()),
        engine_extras=draw(st.booleans()),
        seed=draw(st.one_of(st.none(), st.integers(0, 2**31 - 1))),
        slo=draw(st.sampled_from([None, parse_slo("ttft=0.5"), parse_slo("ttft=1,tpot=0.05,e2e=2")])),
        warmup=pick(draw, x, [0.1, 0.0, 0.5, 1.0], [2.0, math.nan]),
        drain=pick(draw, x, [0.1, 0.0, 0.5, 1.0], [-0.5]),
        vllm_keys=draw(st.booleans()),
        report=False,
        progress=False,
    )  # fmt: skip
    return frame, config


# -- the property -----------------------------------------------------------------------------


def check_run(result: RunResult, out: Path) -> None:
    """A finished run: strict finite JSON, reconciled counts, no partial outputs."""
    assert result.run_dir == out and not result.interrupted
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"), parse_constant=_refuse)
    finite_json(summary)
    finite_outputs(out)
    no_partial_outputs(out)
    c = summary["counts"]
    assert c["completed"] + c["failed"] + c["dropped"] == c["recorded"], c
    assert c["recorded"] == c["scheduled"] == result.schedule.n > 0, c
    assert c["not_sent"] == 0 and c["issued"] + c["dropped"] == c["recorded"], c
    records = result.records
    assert records.height == c["recorded"] and records["req_id"].is_unique().all()
    assert int(records["ok"].sum()) == c["completed"]
    context = summary["context"]
    assert context["oversized_recorded"] == int(records["oversized"].fill_null(False).sum())
    assert context["oversized_recorded"] + context["fitting_recorded"] <= c["recorded"]
    if context["action"] != "send" and context["context_tokens"] is not None:
        assert context["oversized_recorded"] == 0  # skipped or clipped: nothing oversized sent
    run = json.loads((out / "run.json").read_text(encoding="utf-8"), parse_constant=_refuse)
    assert run["context"]["oversized"] == context["oversized"]


def run_case(entry: str, call, out: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ContextWarning)
        result = outcome(entry, call)
    if result.error is not None:
        assert not out.exists(), f"{result.error!s} but {out} was left behind"
        no_partial_outputs(out.parent)
    else:
        check_run(result.result, out)


@given(case=cases())
def test_replay_generated_tables_and_options(server, case):
    frame, config = case
    config = dataclasses.replace(
        config, client=dataclasses.replace(config.client, url=server.base_url)
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        run_case("replay", lambda: replay(frame, config, out), out)


# -- foreign files as SOURCE (what `burstlab replay SOURCE` reads) -----------------------------

SUFFIXES = st.sampled_from([".parquet", ".json", ".csv", "", ".txt", ".parquet.gz"])


@st.composite
def foreign_sources(draw, root: Path) -> Path:
    """A file or folder under `root` that a user might pass as SOURCE by mistake (or not)."""
    kind = draw(st.sampled_from(
        ["valid", "random", "spec", "json", "csv", "folder", "truncated", "empty", "zero", "valid"]
    ))  # fmt: skip
    suffix = ".parquet" if kind == "valid" and draw(st.booleans()) else draw(SUFFIXES)
    path = root / f"source{suffix}"
    if kind == "folder":
        path.mkdir()
        if draw(st.booleans()):
            (path / "part-0.parquet").write_bytes(draw(st.binary(max_size=64)))
        return path
    if kind == "random":
        path.write_bytes(draw(st.binary(max_size=2000)))
    elif kind == "spec":
        spec = {"burstlab_spec": draw(st.sampled_from([1, 2, "x", None])), "arrivals": {}}
        path.write_text(json.dumps(spec))
    elif kind == "json":
        path.write_text(
            json.dumps(draw(st.sampled_from([[], {}, None, 1.5, "text", {"rows": [1]}])))
        )
    elif kind == "csv":
        path.write_text("arrival_s,input_tokens,output_tokens\n0,1,2\n1,nan,3\n")
    elif kind == "zero":
        path.write_bytes(b"")
    else:
        table = draw(requests_tables(bounded_in=False, bounded_out=False))
        if kind == "empty":
            table = table.clear()
        full = root / "full.parquet"
        table.write_parquet(full)
        data = full.read_bytes()
        if kind == "truncated":
            data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
        path.write_bytes(data)
        full.unlink()
    return path


@given(data=st.data())
def test_replay_foreign_files_as_source(server, data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = data.draw(foreign_sources(root))
        out = root / "run"
        config = ReplayConfig(
            client=ClientOptions(url=server.base_url),
            schedule=ScheduleOptions(max_gap=0.001, limit=MAX_ROWS),
            probe_tokenize=False,
            report=False,
            progress=False,
        )
        ctx = SimpleNamespace(obj={"data_dir": root / "data"})

        def call():
            return replay(_requests(ctx, str(path)), config, out)  # type: ignore[arg-type]

        run_case("replay-source", call, out)


# -- plain regression examples of what the generated cases found ------------------------------
