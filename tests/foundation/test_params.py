"""One parser per kind of parameter text: KEY=VALUE lists, START:END windows, seconds."""

from __future__ import annotations

import math

import pytest

from burstlab.errors import UsageError
from burstlab.params import non_negative, parse_pairs, parse_seconds, parse_window


def test_pairs_from_one_string_or_repeated_items():
    assert parse_pairs("a=1, b=2.5", param="mix") == {"a": 1.0, "b": 2.5}
    assert parse_pairs(["GPT-4=3", "ChatGPT=1,x=0"], param="mix", value=non_negative) == {
        "GPT-4": 3.0,
        "ChatGPT": 1.0,
        "x": 0.0,
    }
    assert parse_pairs(None, param="mix") == {} and parse_pairs("", param="mix") == {}
    assert parse_pairs("arrival_s=ts=x", param="map", value=str) == {"arrival_s": "ts=x"}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a", "expected KEY=VALUE, found 'a'"),
        ("=1", "expected KEY=VALUE, found '=1'"),
        ("a=x", "cannot read the value of 'a=x'"),
        ("a=1,a=2", "'a' is given twice"),
        ("a=-1", "expected a number ≥ 0"),
    ],
)
def test_pairs_errors_name_the_parameter_and_the_item(text, why):
    with pytest.raises(UsageError, match=why) as caught:
        parse_pairs(text, param="mix", value=non_negative)
    assert caught.value.param == "mix" and str(caught.value).startswith("mix: ")


def test_restricted_keys_are_case_insensitive():
    assert parse_pairs("TTFT=1", param="slo", keys=("ttft",)) == {"ttft": 1.0}
    with pytest.raises(UsageError, match="unknown key 'itl'"):
        parse_pairs("itl=1", param="slo", keys=("ttft",))


def test_seconds_and_windows():
    assert parse_seconds("500ms") == 0.5 and parse_seconds("2s") == 2.0 and parse_seconds("3") == 3
    with pytest.raises(ValueError):
        parse_seconds("inf")
    assert parse_window("0:600") == (0.0, 600.0)
    assert parse_window(":60") == (0.0, 60.0)
    assert parse_window("300:") == (300.0, math.inf)
    assert parse_window(None) is None and parse_window("") is None
    for bad in ("10-20", "5:1", "a:b", "-1:5"):
        with pytest.raises(UsageError, match=r"^window: expected"):
            parse_window(bad)
