"""Typed JSON documents (burstlab.jsondoc): one machinery, any document, any error class."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

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


@dataclass
class Loose:
    """A document with an untyped field (`Any` is checked for finiteness too)."""

    extra: Any = None


def test_build_refuses_every_non_finite_number_as_dump_does():
    """Python's parser reads NaN, Infinity and 1e999 (as inf); `build` used to take them, so a
    document loaded with a NaN that `dump` then refused (load must refuse what save refuses)."""
    for token, shown in (("NaN", "NaN"), ("Infinity", "Infinity"), ("-1e999", "-Infinity")):
        text = '{"kind": "run", "rows": [{"name": "a", "value": 1, "note": TOKEN}]}'
        text = text.replace("TOKEN", token)
        with pytest.raises(
            InputError, match=rf"summary\.rows\[0\]\.note: expected a finite number, found {shown}"
        ):
            jsondoc.build(Doc, json.loads(text), error=_error, where="summary")
    with pytest.raises(InputError, match=r"doc\.extra\.a\[1\]: expected a finite number"):
        jsondoc.build(Loose, json.loads('{"extra": {"a": [1, NaN]}}'), error=_error, where="doc")


def test_integers_are_64_bit_and_huge_literals_are_described_not_printed():
    ok = {"kind": "run", "rows": [], "counts": {"n": 2**63 - 1}}
    assert jsondoc.build(Doc, ok, error=_error, where="s").counts["n"] == 2**63 - 1
    with pytest.raises(InputError, match=r"s\.counts\.n: an integer of about 20 digits does"):
        jsondoc.build(Doc, {**ok, "counts": {"n": 2**64}}, error=_error, where="s")
    big = {"kind": "run", "rows": [{"name": "a", "value": 10**5000}]}  # str() refuses it
    with pytest.raises(InputError, match=r"value: an integer of about 5001 digits is beyond"):
        jsondoc.build(Doc, big, error=_error, where="s")
    assert jsondoc.show(list(range(100))).endswith("…") and len(jsondoc.show([0] * 99)) == 80
