"""Generated bad knobs for synth: `burstlab.synth.generate` (and `burstlab.synth.export`) with
extreme values on the shipped samples' fitted specs — duration 1e-6 … 1e6 s; rate_scale and
speedup 1e-9 … 1e9, NaN, ±inf, 0 and negative; seeds up to 2**64 and negative; sessions and
failures on and off; group mixes with unknown, zero, negative and non-finite weights.

Property (docs/design.md §0): a one-line `UsageError`/`SpecError`, or a canonical requests
table with finite, sorted arrival_s in [0, duration), token counts ≥ 0 — which exports to
Parquet, Mooncake JSONL or BurstGPT CSV with no partial file left and only finite numbers.

Kept fast on purpose, and said so: when the knobs are valid and would generate more than
`EXPECTED_CAP` requests (but no more than generate accepts), rate_scale is lowered so that
about `EXPECTED_CAP` are expected; and knobs whose duration × speedup spans between
`HORIZON_FAST_S` and what generate accepts (minutes of Markov-chain simulation per case) are
skipped. Knobs beyond generate's limits still run: they must be refused, quickly.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import assume, given
from hypothesis import strategies as st

from burstlab import fitting, synth, traces
from burstlab.errors import SpecError, UsageError
from burstlab.schema import REQUESTS, REQUIRED
from burstlab.spec import WorkloadSpec
from burstlab.synth.arrivals import MAX_REQUESTS, MAX_STEPS
from burstlab.synth.generate import expected_rate
from fuzz.checks import finite_outputs, no_partial_outputs, outcome

SAMPLES = ("azure-llm-2023-conv", "azure-llm-2023-code", "mooncake-conversation")
#: Specs fitted from the shipped samples: each sample, the conv and code samples together by
#: kind (groups, for group_mix), and the conv sample with session ids (for sessions).
SPECS = (*SAMPLES, "conv+code by kind", "conv with sessions")
EXPECTED_CAP = 1e5
HORIZON_FAST_S = 2e6


@functools.cache
def fitted(name: str) -> WorkloadSpec:
    """The fitted spec of one of `SPECS` (fitted once per test session)."""
    if name == "conv+code by kind":
        both = pl.concat([traces.sample_frame(SAMPLES[0]), traces.sample_frame(SAMPLES[1])])
        return fitting.fit(both, by="kind").spec
    if name == "conv with sessions":
        conv = traces.sample_frame(SAMPLES[0])
        ids = (pl.int_range(pl.len()) % 2000).cast(pl.String).alias("session_id")
        return fitting.fit(conv.with_columns(ids)).spec
    return fitting.fit(traces.sample_frame(name)).spec


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: 10.0**e)


#: Values no knob may take (plus, for seeds, negative integers and non-integers).
BAD = st.sampled_from([0.0, -1.0, -1e-9, math.nan, math.inf, -math.inf])


def sometimes_bad(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """`good` seven times in eight (so most cases reach generation; valid shrinks first)."""
    return st.integers(0, 7).flatmap(lambda i: bad if i == 7 else good)


def knob(lo: float, hi: float) -> st.SearchStrategy[float]:
    good = st.one_of(log_uniform(lo, hi), st.sampled_from([1.0, lo, hi]))
    return sometimes_bad(good, BAD)


seeds = sometimes_bad(
    st.one_of(st.integers(0, 2**64), st.integers(0, 9)), st.sampled_from([-1, -(2**31), 1.5])
)
#: True one time in four: generation from a spec without sessions is a SpecError.
rarely = st.integers(0, 3).map(lambda i: i == 3)


@st.composite
def group_mixes(draw, spec: WorkloadSpec) -> dict[str, float] | None:
    """None mostly; for a spec without groups a mix is a UsageError, so only one time in four."""
    if draw(st.booleans() if spec.groups else rarely.map(lambda x: not x)):
        return None
    names = [g.name for g in spec.groups or []] + ["unknown-group"]
    keys = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    weight = st.one_of(st.floats(0.0, 10.0), st.sampled_from([0.0, -1.0, math.nan, math.inf]))
    return {k: draw(weight) for k in keys}


@st.composite
def cases(draw) -> dict:
    name = draw(st.sampled_from(SPECS))
    spec = fitted(name)
    knobs = {
        "duration_s": draw(knob(1e-6, 1e6)),
        "rate_scale": draw(knob(1e-9, 1e9)),
        "speedup": draw(knob(1e-9, 1e9)),
        "seed": draw(seeds),
        "sessions": draw(st.booleans() if spec.sessions else rarely),
        "failures": draw(st.booleans()),
        "group_mix": draw(group_mixes(spec)),
    }
    d, r, s = knobs["duration_s"], knobs["rate_scale"], knobs["speedup"]
    if all(math.isfinite(x) and x > 0 for x in (d, r, s)):
        horizon = d * s
        for window in _grid_windows(spec):
            assume(not (HORIZON_FAST_S < horizon <= MAX_STEPS * window))  # slow, not wrong
        expected = expected_rate(spec) * r * horizon
        if EXPECTED_CAP < expected <= MAX_REQUESTS:
            knobs["rate_scale"] = r * EXPECTED_CAP / expected
    fmt = draw(st.sampled_from([None, "parquet", "jsonl", "csv"]))
    return {"name": name, "spec": spec, "knobs": knobs, "fmt": fmt}


def _grid_windows(spec: WorkloadSpec) -> list[float]:
    """The step (s) of every intensity grid a generation from `spec` may build (one per
    modulated spec or group)."""
    out = []
    for s in [spec, *(g.spec for g in spec.groups or [])]:
        a = s.arrivals
        if a.model == "modulated" and a.rate_curve is not None:
            regime = a.burst_regime.window_s if a.burst_regime else math.inf
            out.append(min(a.rate_curve.window_s, regime))
    return out


def check_frame(frame: pl.DataFrame, duration_s: float) -> None:
    """A canonical requests table: schema, no nulls where required, finite sorted times in
    [0, duration), token counts ≥ 0."""
    assert dict(frame.schema) == REQUESTS
    for col in REQUIRED["requests"]:
        assert frame[col].null_count() == 0, col
    t = frame["arrival_s"].to_numpy()
    assert np.all(np.isfinite(t))
    assert np.all(np.diff(t) >= 0)
    if t.size:
        assert t[0] >= 0 and t[-1] < duration_s, (t[0], t[-1], duration_s)
    assert frame["input_tokens"].min() is None or frame["input_tokens"].min() >= 0
    assert frame["output_tokens"].min() is None or frame["output_tokens"].min() >= 0


def check_export(frame: pl.DataFrame, fmt: str, metadata: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        dest = folder / f"load.{fmt}"
        result = outcome("synth.export", lambda: synth.export(frame, dest, metadata=metadata))
        assert result.error is None, repr(result.error)  # a generated frame always exports
        assert sorted(p.name for p in folder.iterdir()) == [dest.name]
        no_partial_outputs(folder)
        finite_outputs(folder)
        if fmt == "jsonl":
            lines = dest.read_text().splitlines()
            assert len(lines) == frame.height
            rows = [json.loads(line, parse_constant=_refuse) for line in lines]
            stamps = [r["timestamp"] for r in rows]
            assert stamps == sorted(stamps) and all(r["input_length"] >= 0 for r in rows)
        elif fmt == "csv":
            back = pl.read_csv(dest) if frame.height else None
            if back is not None:
                assert back.height == frame.height
                assert back["Timestamp"].is_finite().all() and back["Timestamp"].is_sorted()
                assert (back["Request tokens"] >= 0).all()


def _refuse(token: str) -> float:
    raise AssertionError(f"non-finite JSON token {token}")


def check_generate(case: dict) -> None:
    """The property for one case (also called by the plain regression tests)."""
    spec, knobs = case["spec"], case["knobs"]
    result = outcome("synth.generate", lambda: synth.generate(spec, **knobs))
    if result.error is not None:
        assert isinstance(result.error, (UsageError, SpecError)), repr(result.error)
        return
    w = result.result
    check_frame(w.frame, knobs["duration_s"])
    assert w.diagnostics["requests"] == w.frame.height
    if case["fmt"] is not None:
        check_export(w.frame, case["fmt"], w.metadata())


@given(cases())
def test_generate_extreme_knobs(case):
    check_generate(case)
