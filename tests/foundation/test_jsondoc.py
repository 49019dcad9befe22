"""Typed JSON documents (burstlab.jsondoc): one machinery, any document, any error class."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pytest

from burstlab import jsondoc
from burstlab.errors import InputError


@dataclass
class Row:
    name: str
    value: float
    note: float | None = None


@dataclass
class Doc:
    """A run-summary-like document: another user of the same machinery as the spec."""

    kind: Literal["run", "capacity"]
    rows: list[Row]
    counts: dict[str, int] = field(default_factory=dict)
    p99_s: float | None = None


def _error(message: str) -> Exception:
    return InputError("summary.json", message)


def test_dump_and_build_round_trip_with_numpy_numbers():
    doc = Doc("run", [Row("a", np.float64(1.5)), Row("b", 2)], {"ok": np.int64(3)}, math.nan)
    plain = jsondoc.dump(Doc, doc, error=_error, where="summary")
    assert plain == {
        "kind": "run",
        "rows": [
            {"name": "a", "value": 1.5, "note": None},
            {"name": "b", "value": 2.0, "note": None},
        ],
        "counts": {"ok": 3},
        "p99_s": None,  # NaN in an optional field: "not available"
    }
    text = json.dumps(plain, allow_nan=False)
    back = jsondoc.build(Doc, json.loads(text), error=_error, where="summary")
    assert back == Doc("run", [Row("a", 1.5), Row("b", 2.0)], {"ok": 3}, None)


def test_errors_name_the_path_through_the_callers_error_class():
    bad = Doc("run", [Row("a", 1.0), Row("b", math.inf)])
    with pytest.raises(InputError, match=r"summary.json: summary\.rows\[1\]\.value: inf is not"):
        jsondoc.dump(Doc, bad, error=_error, where="summary")
    with pytest.raises(InputError, match=r"summary\.counts\.ok: expected an integer, found 1\.5"):
        jsondoc.dump(Doc, Doc("run", [], {"ok": 1.5}), error=_error, where="summary")
    data = {"kind": "walk", "rows": []}
    with pytest.raises(InputError, match=r"summary\.kind: expected one of \['run', 'capacity'\]"):
        jsondoc.build(Doc, data, error=_error, where="summary")
    data = {"kind": "run", "rows": [{"name": "a", "value": None}]}
    with pytest.raises(
        InputError, match=r"summary\.rows\[0\]\.value: expected a number, found null"
    ):
        jsondoc.build(Doc, data, error=_error, where="summary")
    with pytest.raises(InputError, match=r"summary: missing field\(s\) \['rows'\]"):
        jsondoc.build(Doc, {"kind": "run"}, error=_error, where="summary")
