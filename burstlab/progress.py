"""One progress-bar style for every long job (rich); quiet when output is not a terminal."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from burstlab.console import console


def progress(*, transient: bool = False, disable: bool | None = None) -> Progress:
    """A rich Progress with a bar, counts and times. Use as a context manager."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
        disable=bool(disable),
        console=console(stderr=True),  # piped: full width, not 80 columns
    )
