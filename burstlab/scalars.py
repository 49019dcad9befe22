"""Typed numbers out of polars aggregates.

polars types a column's aggregates (`Series.min()`, `.max()`, `.mean()`, `.quantile()`, …) as
any Python literal or None, because a column may hold dates, strings or lists and may have no
non-null value at all. `number` and `integer` take such an aggregate of a column that should be
numeric and return it as a float or an int, with a burstlab error when it is not a number:
None (an empty or all-null column) is an `InputError` naming the column, anything else (a date,
a string) a `SchemaError`. Where a caller has a default for an empty column it says so itself
(``number(s.max() or 0.0, "arrival_s")``).
"""

from __future__ import annotations

from decimal import Decimal

from burstlab.errors import InputError, SchemaError


def _checked(value: object, column: str) -> int | float | Decimal:
    if value is None:
        raise InputError(None, "no values to aggregate (empty or all null)", field=column)
    if isinstance(value, (int, float, Decimal)):  # bool is an int: a count of flags
        return value
    raise SchemaError(
        f"column {column!r} is not numeric: an aggregate of it is {type(value).__name__} {value!r}"
    )


def number(value: object, column: str) -> float:
    """`value`, an aggregate of the numeric column `column`, as a float (see the module)."""
    return float(_checked(value, column))


def integer(value: object, column: str) -> int:
    """`value`, an aggregate of the numeric column `column`, as an int (a float is truncated,
    as ``int()`` does; see the module)."""
    return int(_checked(value, column))
