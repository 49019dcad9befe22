"""The property every generated bad input must satisfy (docs/design.md §0, docs/reliability.md):

it succeeds with reconciled counts, or it fails with ONE `BurstlabError` whose message is a
single line naming the file or field and what was expected — never another exception (a
traceback for a user), never a partial output file, never a NaN or ±inf in a written number.

`outcome(call, out_dir)` runs one case and classifies it; the fuzz tests assert on it and count
the cases per entry point (`make fuzz` prints the counts).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from burstlab.errors import BurstlabError

#: Cases run per entry point in this session, by outcome ("ok" / the error class name).
TALLY: dict[str, Counter[str]] = {}


@dataclass
class Outcome:
    """What one case did: its result, or the BurstlabError it raised."""

    result: Any = None
    error: BurstlabError | None = None


def outcome(entry: str, call: Callable[[], Any]) -> Outcome:
    """Run `call`; a BurstlabError is a legal outcome (recorded), anything else propagates and
    fails the test with the generated input shown by hypothesis."""
    tally = TALLY.setdefault(entry, Counter())
    try:
        result = call()
    except BurstlabError as exc:
        tally[type(exc).__name__] += 1
        check_message(exc)
        return Outcome(error=exc)
    tally["ok"] += 1
    return Outcome(result=result)


def check_message(exc: BurstlabError) -> None:
    """One line, not empty, no Python repr of an exception object leaking through."""
    text = str(exc)
    assert text and "\n" not in text, f"not one line: {text!r}"
    assert "Traceback" not in text and "object at 0x" not in text, text


def no_partial_outputs(folder: Path) -> None:
    """No hidden temporary files or staging folders left behind in `folder` (recursively)."""
    if not folder.exists():
        return
    left = [
        p for p in folder.rglob("*") if p.name.startswith(".") and p.name.endswith((".tmp", ".old"))
    ]
    assert not left, f"partial outputs left: {left}"


def finite_json(obj: Any, where: str = "$") -> None:
    """Every number in a parsed JSON document is finite."""
    if isinstance(obj, float):
        assert math.isfinite(obj), f"{where}: {obj}"
    elif isinstance(obj, dict):
        for k, v in obj.items():
            finite_json(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            finite_json(v, f"{where}[{i}]")


def _refuse(token: str) -> float:
    """json.loads hook for the non-standard tokens NaN, Infinity, -Infinity."""
    raise AssertionError(f"non-finite JSON token {token}")


def finite_outputs(folder: Path) -> None:
    """Every JSON file under `folder` parses strictly, and every float column of every Parquet
    file holds no NaN/inf (nulls are how "not available" is written)."""
    for path in folder.rglob("*.json"):
        finite_json(json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse), str(path))
    for path in folder.rglob("*.parquet"):
        frame = pl.from_arrow(pq.read_table(path))
        assert isinstance(frame, pl.DataFrame)
        for name, dtype in frame.schema.items():
            if dtype.is_float():
                bad = frame.select((~pl.col(name).is_finite()).sum()).item()
                assert not bad, f"{path}:{name}: {bad} non-finite values"
