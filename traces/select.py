"""Pick the rows of a canonical table that an analysis should see: an SQL condition and a time
window, the same way for every stage (fit --where/--window, replay --window, hold-out splits)."""

from __future__ import annotations

import polars as pl

from burstlab.errors import UsageError


def select(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    where: str | None = None,
    window: tuple[float, float] | None = None,
    rebase: bool = False,
) -> pl.LazyFrame:
    """Rows of `frame` matching the SQL condition `where` (polars SQL, e.g. ``"model = 'GPT-4'"``)
    that arrive in ``window = (start, end)`` — start ≤ arrival_s < end, trace seconds.

    With `rebase`, arrival_s is shifted so the window starts at 0 (the first row need not be at
    0: a quiet opening is part of the window's behaviour)."""
    lf = frame.lazy()
    if where:
        try:
            lf = lf.sql(f"SELECT * FROM self WHERE {where}")
            lf.collect_schema()
        except Exception as exc:  # polars raises several SQL error types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(
                f"{where!r} is not a valid SQL condition ({first})", param="where"
            ) from None
    if window is not None:
        start, end = window
        if "arrival_s" not in lf.collect_schema().names():
            raise UsageError("a time window needs a table with arrival_s", param="window")
        lf = lf.filter(pl.col("arrival_s").is_between(start, end, closed="left"))
        if rebase:
            lf = lf.with_columns(pl.col("arrival_s") - start)
    return lf
