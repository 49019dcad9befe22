"""Generated bad spec documents: real saved specs (the shipped samples' fits, a grouped and a
session spec) mutated at random paths — fields deleted, added and renamed; values turned into
another JSON type (number ↔ string ↔ null ↔ list ↔ object); NaN / Infinity / 1e999 tokens;
huge and negative numbers (negative probabilities); lists emptied or grown; a wrong version —
and read with `WorkloadSpec.from_json` or `WorkloadSpec.load`.

Property (docs/design.md §0, §2): a one-line `SpecError` that names the field path (or the
file and line of a JSON syntax error), or a spec that validates, round-trips (save → load →
the same dict) and generates 10 s of load — a canonical table with token counts ≥ 0 and
sorted arrivals in [0, 10) — or fails with a BurstlabError; never another exception.

Kept fast, and said so: when a mutation raises the spec's peak rate so far that 10 s would
hold more than `EXPECTED_CAP` requests, the generation uses a rate_scale that brings the peak
back to that many (a huge rate is still validated, saved and loaded as written).
"""

from __future__ import annotations

import copy
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from burstlab import synth
from burstlab.errors import BurstlabError, SpecError
from burstlab.spec import WorkloadSpec
from fuzz.checks import outcome
from fuzz.test_synth_fuzz import SPECS, check_frame, fitted

EXPECTED_CAP = 1e5
DURATION_S = 10.0
#: The error of a document names where: ``<where>.<field>[i]…: …`` (a part in parentheses may
#: follow the path, e.g. ``(bins + masses)``), or ``<where>, line N: not valid JSON``.
PATH = r"(\.[A-Za-z_]\w*|\.[^.\s:\[]+|\[\d+\])*( \([^)]*\))?(: |, line \d+: )"

#: Placeholders replaced by raw JSON text after `json.dumps` (tokens no Python value gives).
RAW = {"__1e999__": "1e999", "__-1e999__": "-1e999", "__big_int__": "1" + "0" * 400}


@st.composite
def replacement(draw) -> Any:
    """A value of another JSON type, a non-finite token, or a number at an extreme."""
    return draw(
        st.one_of(
            st.sampled_from(
                [None, "text", "", True, [], {}, [1, 2], {"x": 1}, 0, -1, 0.5, 1e308, -1e308]
            ),
            st.sampled_from([math.nan, math.inf, -math.inf]),
            st.sampled_from(list(RAW)),
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(-(2**70), 2**70),
        )
    )


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) to a value inside `doc`, the root excluded."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@st.composite
def mutate(draw, doc: Any) -> None:
    """One mutation of `doc`, in place. Half of them change a number (negate, scale, make it
    non-finite), which keeps the document's shape: those reach validation and generation."""
    paths = [p for p in _paths(doc) if p != ("burstlab_spec",)]  # the "version" op's
    numbers = [p for p in paths if _is_number(_parent(doc, p)[p[-1]])]
    if not draw(st.booleans()):  # first: hypothesis starts from the simplest draw
        path = draw(st.sampled_from(numbers))
        op = draw(st.sampled_from(["scale", "negate", "scale", "replace"]))
    else:
        path = draw(st.sampled_from(paths))
        ops = ["replace", "delete", "add", "rename", "grow", "version"]
        op = draw(st.sampled_from(ops))
    parent, key = _parent(doc, path), path[-1]
    value = parent[key]
    if op == "version":
        doc["burstlab_spec"] = draw(st.sampled_from([0, 2, "1", None, 1.0, [1]]))
    elif op == "replace":
        parent[key] = draw(replacement())
    elif op == "delete":
        del parent[key]
    elif op == "add":
        if isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "Rate", "rates_per_s_", "n"]))] = 1
        else:
            parent.insert(key, copy.deepcopy(value))
    elif op == "rename" and isinstance(parent, dict):
        parent[f"{key}_renamed"] = parent.pop(key)
    elif op == "negate" and _is_number(value):
        parent[key] = -value if value else -1
    elif op == "scale" and isinstance(value, int) and not isinstance(value, bool):
        parent[key] = value * draw(st.sampled_from([2, 0, 10**9, 10**30]))  # stays an integer
    elif op == "scale" and _is_number(value):
        parent[key] = value * draw(st.sampled_from([2.0, 0.5, 1e-9, 1e9, 1e-300, 1e300]))
    elif op == "grow" and isinstance(value, list):
        parent[key] = (
            [] if draw(st.booleans()) or not value else value + [copy.deepcopy(value[-1])] * 3
        )
    else:  # the op does not apply to this value: replace it instead
        parent[key] = draw(replacement())


@st.composite
def documents(draw) -> tuple[str, str]:
    """(which spec, mutated JSON text)."""
    name = draw(st.sampled_from(SPECS))
    doc = json.loads(base_text(name))
    for _ in range(draw(st.integers(1, 3))):
        mutate_one = mutate(doc)
        draw(mutate_one)
    text = json.dumps(doc, indent=1)  # NaN / Infinity tokens where a value is non-finite
    for placeholder, raw in RAW.items():
        text = text.replace(f'"{placeholder}"', raw)
    return name, text


_TEXTS: dict[str, str] = {}


def base_text(name: str) -> str:
    if name not in _TEXTS:
        _TEXTS[name] = fitted(name).to_json()
    return _TEXTS[name]


def peak_rate(spec: WorkloadSpec) -> float:
    """An upper bound on the spec's arrival rate (requests/s), groups summed."""
    total = 0.0
    for s in [spec] if not spec.groups else [g.spec for g in spec.groups]:
        a = s.arrivals
        if a.model == "modulated" and a.rate_curve is not None:
            levels = a.burst_regime.levels if a.burst_regime else [1.0]
            total += max(a.rate_curve.rates_per_s) * max(levels)
        elif a.model == "windowed" and a.windows:
            total += max(w.rate_per_s for w in a.windows)
        else:
            total += 1.0 / a.renewal.mean()
        if a.gap_shape == "real-time" and a.gap_law is not None:
            total = max(total, 1.0 / max(a.gap_law.edges[0], 1e-300))
    return total


def check_error(error: BurstlabError, where: str) -> None:
    assert isinstance(error, SpecError), repr(error)
    assert str(error).startswith(where), str(error)
    assert re.match(re.escape(where) + PATH, str(error)), str(error)


def check_document(text: str, via_file: bool) -> None:
    """The property for one document (also called by the plain regression tests)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if via_file:
            path = folder / "in.json"
            path.write_text(text)
            where = str(path)
            result = outcome("spec.load", lambda: WorkloadSpec.load(path))
        else:
            where = "spec"
            result = outcome("spec.load", lambda: WorkloadSpec.from_json(text))
        if result.error is not None:
            check_error(result.error, where)
            return
        spec = result.result
        spec.validate()
        back = WorkloadSpec.load(spec.save(folder / "out.json"))
        assert back.to_dict() == spec.to_dict()
    try:
        peak = peak_rate(spec)
    except (BurstlabError, ArithmeticError):
        peak = 0.0  # generate meets (and reports) the same problem
    scale = min(1.0, EXPECTED_CAP / (peak * DURATION_S)) if peak > 0 else 1.0
    if not math.isfinite(scale) or scale <= 0:
        scale = 1e-300
    made = outcome(
        "spec.generate", lambda: synth.generate(spec, duration_s=DURATION_S, rate_scale=scale)
    )
    if made.error is None:
        check_frame(made.result.frame, DURATION_S)


@given(documents(), st.booleans())
def test_mutated_spec_documents(doc, via_file):
    check_document(doc[1], via_file)
