"""The fuzz harness itself: its checks catch what they are meant to catch."""

from __future__ import annotations

import json

import pytest

from burstlab.errors import InputError
from fuzz.checks import finite_outputs, no_partial_outputs, outcome


def test_outcome_accepts_burstlab_errors_and_lets_others_through():
    def bad():
        raise InputError("x.csv", "bad row", line=3)

    assert outcome("harness", bad).error is not None
    with pytest.raises(ZeroDivisionError):
        outcome("harness", lambda: 1 / 0)
    with pytest.raises(AssertionError, match="not one line"):
        outcome("harness", lambda: (_ for _ in ()).throw(InputError(None, "two\nlines")))


def test_partial_and_non_finite_outputs_are_caught(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"x": [1.0, 2.0]}))
    finite_outputs(tmp_path)
    no_partial_outputs(tmp_path)
    (tmp_path / "b.json").write_text('{"x": NaN}')
    with pytest.raises(AssertionError, match="NaN"):
        finite_outputs(tmp_path)
    (tmp_path / ".out.parquet.abc.tmp").write_text("")
    with pytest.raises(AssertionError, match="partial outputs"):
        no_partial_outputs(tmp_path)
