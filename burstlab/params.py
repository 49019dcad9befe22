"""Parameter values written as text, parsed one way everywhere (library and CLI alike).

- `parse_pairs`: ``KEY=VALUE`` lists — SLOs (``ttft=0.5,tpot=50ms``), fault mixes
  (``cut=0.1``), group mixes (``GPT-4=3``), column maps (``arrival_s=ts``). Items may be given
  comma-separated in one string, as a list of strings, or both.
- `parse_window`: ``START:END`` in trace seconds (either side may be empty).
- `parse_seconds`: a number of seconds, ``ms``/``s`` suffixes accepted.

Errors are `UsageError`s naming the parameter, so the CLI shows them as the option they came
from (``--slo: …``) and a notebook user sees the argument name (``slo: …``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from burstlab.errors import UsageError

V = TypeVar("V")


def _items(text: str | Iterable[str] | None) -> list[str]:
    if text is None:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    return [item.strip() for part in parts for item in part.split(",") if item.strip()]


def parse_pairs(
    text: str | Iterable[str] | None,
    *,
    param: str,
    value: Callable[[str], V] = float,  # type: ignore[assignment]
    keys: Sequence[str] | None = None,
    expected: str = "KEY=VALUE",
) -> dict[str, V]:
    """``"a=1,b=2"`` (or ``["a=1", "b=2"]``) → ``{"a": value("1"), "b": value("2")}``.

    `keys` restricts the keys (case-insensitive, stored lower-case); `value` converts each value
    and may raise ValueError, which becomes a UsageError naming the item. A key given twice is
    an error (the user meant one of them)."""
    out: dict[str, V] = {}
    for item in _items(text):
        key, sep, raw = item.partition("=")  # keys are names; a value may hold "="
        key = key.strip()
        if keys is not None:
            key = key.lower()
        if not sep or not key:
            raise UsageError(f"expected {expected}, found {item!r}", param=param)
        if keys is not None and key not in keys:
            raise UsageError(
                f"unknown key {key!r} in {item!r}; expected one of {list(keys)}", param=param
            )
        if key in out:
            raise UsageError(f"{key!r} is given twice", param=param)
        try:
            out[key] = value(raw.strip())
        except ValueError as exc:
            detail = f" ({exc})" if str(exc) else ""
            raise UsageError(f"cannot read the value of {item!r}{detail}", param=param) from None
    return out


def parse_seconds(text: str) -> float:
    """``"0.5"``, ``"0.5s"``, ``"500ms"`` → 0.5 (seconds); ValueError for anything else."""
    raw = text.strip().lower()
    scale = 1.0
    if raw.endswith("ms"):
        raw, scale = raw[:-2], 1e-3
    elif raw.endswith("s"):
        raw = raw[:-1]
    value = float(raw) * scale
    if not math.isfinite(value):
        raise ValueError("not a finite number of seconds")
    return value


def non_negative(text: str) -> float:
    """A finite number ≥ 0 (a weight, a probability); ValueError otherwise."""
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError("expected a number ≥ 0")
    return value


def parse_window(
    text: str | Sequence[float] | None, *, param: str = "window"
) -> tuple[float, float] | None:
    """``"START:END"`` (trace seconds; ``":600"`` from 0, ``"300:"`` to the end) or a pair →
    ``(start, end)``; None or ``""`` → None (everything). END must be after START."""
    if text is None or text == "":
        return None
    if isinstance(text, str):
        lo_text, sep, hi_text = text.partition(":")
        try:
            if not sep:
                raise ValueError
            lo = float(lo_text) if lo_text.strip() else 0.0
            hi = float(hi_text) if hi_text.strip() else math.inf
        except ValueError:
            raise UsageError(
                f"expected START:END in seconds, found {text!r}", param=param
            ) from None
    else:
        lo, hi = (float(v) for v in text)
    if math.isnan(lo) or math.isnan(hi) or hi <= lo or lo < 0:
        raise UsageError(f"expected 0 ≤ START < END, found {lo:g}:{hi:g}", param=param)
    return lo, hi
