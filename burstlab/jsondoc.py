"""Typed JSON documents: dataclasses ⇄ JSON-ready values, with errors that name the field path.

A document (a workload spec, a run summary …) is a tree of dataclasses whose fields are typed
with ``float``, ``int``, ``str``, ``bool``, ``Literal[…]``, ``list[T]``, ``dict[str, T]``,
``T | None``, ``Any`` and other dataclasses. `dump` turns one into plain dicts and lists for
`json.dumps`; `build` turns parsed JSON back into the dataclasses. Both check every value
against its field's type and report the first mismatch as ``<where>.<field>[i]…: message``
through the caller's error class (`SpecError` for specs), so save refuses exactly what load
refuses.

The non-finite number policy (one for every document):

- no document ever holds NaN or ±inf — JSON has no token for them;
- ``null`` means "not available", and only fields typed ``T | None`` may be null;
- `dump` turns a non-finite number in an optional field into null, and REFUSES a non-finite
  number in a required field (``float``, or an element of ``list[float]`` /
  ``dict[str, float]``), naming the field path.

So a diagnostic that could not be computed (a KS distance of a fit without data, say) is
written as null, while a parameter that came out NaN is an error at save time, not a file
that later fails to load. `build` holds the mirror rule: Python's JSON parser accepts the
non-standard tokens ``NaN``, ``Infinity`` and ``-Infinity`` (and reads ``1e999`` as inf), and
`build` refuses every non-finite number, in any field, naming its path.

Integers are 64-bit: an ``int`` field holds −2⁶³ … 2⁶³ − 1 (JSON itself has no limit).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np

#: Builds the exception to raise from a message that already starts with the field path.
ErrorFactory = Callable[[str], Exception]


def _fail(error: ErrorFactory, where: str, msg: str) -> Exception:
    return error(f"{where}: {msg}")


@functools.lru_cache(maxsize=256)
def _hints(tp: type) -> dict[str, Any]:
    """Field types of a dataclass (string annotations resolved once per class)."""
    return get_type_hints(tp)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


#: `show` abbreviates a value's text beyond this many characters (a whole list in a message).
SHOW_MAX = 80


def show(value: Any) -> str:
    """A parsed JSON value as the document spells it (null, true, 1.5, "text", NaN,
    Infinity), abbreviated to `SHOW_MAX` characters, for one-line error messages."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return _digits(value)
    text = (
        "null" if value is None else json.dumps(value) if isinstance(value, bool) else repr(value)
    )
    return text if len(text) <= SHOW_MAX else text[: SHOW_MAX - 1] + "…"


def dump(tp: Any, value: Any, *, error: ErrorFactory, where: str) -> Any:
    """`value` (an instance of type `tp`) as JSON-ready dicts, lists and scalars, fields in
    declaration order; numpy scalars become Python numbers, ``float`` fields floats. Raises
    ``error("<where>.<path>: …")`` for a value its field cannot hold (see the module's
    non-finite number policy)."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return _plain(value, error, where)
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) not in args:
                raise _fail(error, where, "expected a value, found None")
            return None
        options = [a for a in args if a is not type(None)]
        optional = len(options) < len(args)
        if optional and _is_number(value) and not math.isfinite(float(value)):
            return None  # "not available"
        return dump(options[0], value, error=error, where=where)
    if origin is Literal:
        if value not in args:
            raise _fail(error, where, f"expected one of {list(args)}, found {value!r}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, tp):
            raise _fail(error, where, f"expected a {tp.__name__}, found {type(value).__name__}")
        hints = _hints(tp)
        return {
            f.name: dump(
                hints[f.name], getattr(value, f.name), error=error, where=f"{where}.{f.name}"
            )
            for f in dataclasses.fields(tp)
        }
    if origin is list:
        if not isinstance(value, (list, tuple, np.ndarray)):
            raise _fail(error, where, f"expected a list, found {type(value).__name__}")
        return [dump(args[0], v, error=error, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(error, where, f"expected a mapping, found {type(value).__name__}")
        return {
            str(k): dump(args[1], v, error=error, where=f"{where}.{k}") for k, v in value.items()
        }
    if tp is float:
        if not _is_number(value):
            raise _fail(error, where, f"expected a number, found {value!r}")
        x = float(value)
        if not math.isfinite(x):
            raise _fail(
                error, where, f"{x} is not a finite number (only optional fields may be null)"
            )
        return x
    if tp is int:
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
            raise _fail(error, where, f"expected an integer, found {value!r}")
        return int(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(error, where, f"expected a string, found {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise _fail(error, where, f"expected true/false, found {value!r}")
        return bool(value)
    raise _fail(error, where, f"cannot write type {tp!r}")  # pragma: no cover - document bug


def _plain(value: Any, error: ErrorFactory, where: str) -> Any:
    """An untyped (``Any``) value as JSON: numbers finite, containers recursively."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if _is_number(value):
        if isinstance(value, (int, np.integer)):
            return int(value)
        x = float(value)
        if not math.isfinite(x):
            raise _fail(error, where, f"{x} is not a finite number")
        return x
    if isinstance(value, dict):
        return {str(k): _plain(v, error, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, error, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _digits(value: int) -> str:
    """A huge integer described without printing it (str() refuses beyond 4,300 digits)."""
    return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"


def _finite_any(value: Any, error: ErrorFactory, where: str) -> None:
    """An untyped (``Any``) parsed value holds no non-finite number, however deep."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(error, where, f"expected a finite number, found {show(value)}")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite_any(v, error, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite_any(v, error, f"{where}[{i}]")


def build(tp: Any, value: Any, *, error: ErrorFactory, where: str) -> Any:
    """An instance of `tp` from parsed JSON `value`. Unknown and missing fields, wrong types
    and values outside a ``Literal`` raise ``error("<where>.<path>: …")``."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        _finite_any(value, error, where)
        return value
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) not in args:
                raise _fail(error, where, "expected a value, found null")
            return None
        options = [a for a in args if a is not type(None)]
        return build(options[0], value, error=error, where=where)
    if origin is Literal:
        if value not in args:
            raise _fail(error, where, f"expected one of {list(args)}, found {show(value)}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _fail(error, where, f"expected an object, found {show(value)}")
        hints = _hints(tp)
        fields = dataclasses.fields(tp)
        names = {f.name for f in fields}
        unknown = sorted(set(value) - names)
        if unknown:
            raise _fail(
                error, where, f"unknown field(s) {unknown}; expected some of {sorted(names)}"
            )
        required = {
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(value))
        if missing:
            raise _fail(error, where, f"missing field(s) {missing}")
        return tp(
            **{k: build(hints[k], v, error=error, where=f"{where}.{k}") for k, v in value.items()}
        )
    if origin is list:
        if not isinstance(value, list):
            raise _fail(error, where, f"expected a list, found {show(value)}")
        return [build(args[0], v, error=error, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(error, where, f"expected an object, found {show(value)}")
        return {k: build(args[1], v, error=error, where=f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)):
            raise _fail(error, where, f"expected a number, found {show(value)}")
        try:
            x = float(value)
        except OverflowError:  # an integer literal beyond the float range
            raise _fail(error, where, f"{_digits(int(value))} is beyond the float range") from None
        if not math.isfinite(x):
            raise _fail(error, where, f"expected a finite number, found {show(value)}")
        return x
    if tp is int:
        if not (isinstance(value, int) and not isinstance(value, bool)):
            raise _fail(error, where, f"expected an integer, found {show(value)}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise _fail(error, where, f"{_digits(value)} does not fit in a 64-bit integer")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _fail(error, where, f"expected a string, found {show(value)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(error, where, f"expected true/false, found {show(value)}")
        return value
    raise _fail(error, where, f"cannot read type {tp!r}")  # pragma: no cover - document bug
