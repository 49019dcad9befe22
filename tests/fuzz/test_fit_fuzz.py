"""Generated bad input for fitting: `burstlab.fitting.fit` and `burstlab.fitting.burstiness` on
degenerate requests tables — 1–20 rows, identical timestamps, constant or all-zero lengths,
every request failed, one huge outlier, a week-long gap, unsorted rows, negative times, times
and token counts near the int32 limit, sub-nanosecond and week-long spacings.

Property (docs/design.md §0): a `FitError`/`UsageError` with a one-line message, or a fit whose
spec validates, saves, loads back equal and holds no NaN or ±inf — never another exception.
The frames are canonical `requests` tables (finite times, token counts ≥ 0 in int32): data a
user can legitimately hand to `fit`, however little it says.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from burstlab import fitting
from burstlab.errors import FitError, UsageError
from burstlab.spec import WorkloadSpec
from fuzz.checks import finite_outputs, no_partial_outputs, outcome

INT32_MAX = 2**31 - 1
#: Spacing scales of the arrival times (seconds): sub-nanosecond to a whole int32 range.
SCALES = (1e-12, 1e-9, 1e-3, 1.0, 60.0, 86400.0, 7 * 86400.0, INT32_MAX / 20)


@st.composite
def arrival_times(draw, n: int) -> np.ndarray:
    """n arrival times: identical, spaced by one of `SCALES` (gaps may repeat or be 0),
    optionally with a week-long gap, shifted negative or near 2**31, maybe unsorted."""
    # the simplest draws come first (hypothesis starts there): a trace that can be fitted
    kind = draw(st.sampled_from(["gaps", "grid", "regular", "identical"]))
    start = draw(
        st.one_of(
            st.just(0.0),
            st.floats(-1e9, 1e9, allow_nan=False),
            st.floats(INT32_MAX - 1e6, float(INT32_MAX)),
        )
    )
    if kind == "identical":
        t = np.full(n, start)
    else:
        scale = draw(st.sampled_from(SCALES))
        if kind == "gaps":
            unit = draw(st.lists(st.floats(0.0, 10.0), min_size=n, max_size=n))
        elif kind == "grid":  # whole-second-like timestamps: many zero gaps
            unit = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
        else:
            unit = [1.0] * n
        gaps = np.asarray(unit, dtype=np.float64) * scale
        gaps[0] = 0.0
        if n > 1 and draw(st.booleans()):
            gaps[draw(st.integers(1, n - 1))] += 7 * 86400.0  # a week-long quiet stretch
        t = start + np.cumsum(gaps)
    if draw(st.booleans()):
        t = t[np.asarray(draw(st.permutations(range(n))), dtype=np.int64)]
    return t


@st.composite
def token_column(draw, n: int) -> np.ndarray:
    """n token counts ≥ 0 (int32): constant, all zero, varied, small with one huge outlier,
    or near the int32 limit."""
    kind = draw(st.sampled_from(["varied", "constant", "zero", "outlier", "huge"]))
    if kind == "constant":
        x = [draw(st.sampled_from([1, 100, 400, INT32_MAX]) | st.integers(0, INT32_MAX))] * n
    elif kind == "zero":
        x = [0] * n
    elif kind == "varied":
        x = draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n))
    elif kind == "outlier":
        x = draw(st.lists(st.integers(0, 50), min_size=n, max_size=n))
        x[draw(st.integers(0, n - 1))] = INT32_MAX
    else:
        x = draw(st.lists(st.integers(INT32_MAX - 10_000, INT32_MAX), min_size=n, max_size=n))
    return np.asarray(x, dtype=np.int32)


@st.composite
def requests_frames(draw) -> pl.DataFrame:
    # mostly enough rows to fit (one frame in eight is shorter); the failure flags: none (half
    # the frames), some, or every request (one in eight)
    n = draw(st.integers(1, 9) if draw(st.integers(0, 7)) == 7 else st.integers(10, 20))
    flags = draw(st.integers(0, 7))
    if flags < 4:
        failed = [False] * n
    elif flags < 7:
        failed = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    else:
        failed = [True] * n
    out = draw(token_column(n))
    out = np.where(np.asarray(failed), 0, out).astype(np.int32)  # failed: output 0, as sources do
    return pl.DataFrame(
        {
            "source": ["fuzz"] * n,
            "arrival_s": draw(arrival_times(n)),
            "input_tokens": draw(token_column(n)),
            "output_tokens": out,
            "failed": failed,
        },
        schema={
            "source": pl.String,
            "arrival_s": pl.Float64,
            "input_tokens": pl.Int32,
            "output_tokens": pl.Int32,
            "failed": pl.Boolean,
        },
    )


def check_fit(frame: pl.DataFrame) -> None:
    """The property for one frame (also called by the plain regression tests)."""
    result = outcome("fitting.fit", lambda: fitting.fit(frame))
    if result.error is not None:
        assert isinstance(result.error, (FitError, UsageError)), repr(result.error)
        return
    spec = result.result.spec
    spec.validate()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = spec.save(folder / "spec.json")
        back = WorkloadSpec.load(path)
        assert back.to_dict() == spec.to_dict()
        finite_outputs(folder)
        no_partial_outputs(folder)


@given(requests_frames())
def test_fit_degenerate_traces(frame):
    check_fit(frame)


@given(requests_frames())
def test_burstiness_degenerate_traces(frame):
    result = outcome("fitting.burstiness", lambda: fitting.burstiness(frame))
    if result.error is not None:
        assert isinstance(result.error, (FitError, UsageError)), repr(result.error)
        return
    report = result.result
    assert report.groups[0].n == frame.height
    assert report.table().height == 1
    assert str(report.summary())  # renders
    report.to_dict()
