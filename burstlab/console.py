"""One way to make a rich Console for the CLI, and to show a table on it.

On a terminal rich uses its width. Piped or logged (make, CI, `| tee`), rich would fall back to
80 columns and wrap tables of dataset ids, fit diagnostics and latency percentiles into
unreadable cells, so there the width is fixed at `PIPED_WIDTH`.
"""

from __future__ import annotations

import math

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table

PIPED_WIDTH = 160


def console(*, stderr: bool = False) -> Console:
    """A Console for stdout (or stderr) that never wraps tables at 80 columns when piped."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, width=PIPED_WIDTH)


def fmt(value: object, digits: int = 4) -> str:
    """One cell of a terminal table: thousands separators, `digits` significant digits for
    fractions, '-' for missing values and NaN."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value.is_integer() and abs(value) < 1e12:
            return f"{int(value):,}"
        return f"{value:,.{digits}g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def frame_table(frame: pl.DataFrame) -> Table:
    """A polars frame as a rich Table (cells through `fmt`; text is never read as markup)."""
    table = Table()
    for name, dtype in frame.schema.items():
        table.add_column(
            escape(name), overflow="fold", justify="right" if dtype.is_numeric() else "left"
        )
    for row in frame.iter_rows():
        table.add_row(*[escape(fmt(v)) for v in row])
    return table


def print_frame(out: Console, frame: pl.DataFrame, title: str) -> None:
    """Print `title` in bold on a line of its own (rich would wrap a title wider than a narrow
    table into it), then `frame` as a table."""
    out.print(f"[bold]{escape(title)}[/]")
    out.print(frame_table(frame))
