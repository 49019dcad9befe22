"""One way to make a rich Console for the CLI.

On a terminal rich uses its width. Piped or logged (make, CI, `| tee`), rich would fall back to
80 columns and wrap tables of dataset ids, fit diagnostics and latency percentiles into
unreadable cells, so there the width is fixed at `PIPED_WIDTH`.
"""

from __future__ import annotations

from rich.console import Console

PIPED_WIDTH = 160


def console(*, stderr: bool = False) -> Console:
    """A Console for stdout (or stderr) that never wraps tables at 80 columns when piped."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, width=PIPED_WIDTH)
