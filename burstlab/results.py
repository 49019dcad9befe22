"""What every result object offers, statsmodels-style: `.summary()`, `.table()`, `.to_dict()`.

A fit, a burstiness report, a generated workload, a fidelity verdict, a replay run: each is a
typed object that carries its diagnostics, and each answers the same three questions —

- ``summary()`` → `Summary`: a readable report (titled tables and notes); `print()` it in a
  terminal, or let a notebook render it as HTML;
- ``table()`` → a polars DataFrame of the result's main table (candidates, verdicts, requests);
- ``to_dict()`` → plain JSON-ready data (what the CLI writes with ``--out``).

The CLI prints the same `Summary` a notebook shows, so the two never drift apart.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.text import Text

from burstlab.console import PIPED_WIDTH, frame_table


@dataclass(repr=False)
class Summary:
    """A titled report: sections of (caption, table) and notes, printable and HTML-renderable
    (its repr is the printed text, so a notebook's plain-text output reads like the CLI's)."""

    title: str
    sections: list[tuple[str, pl.DataFrame]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, caption: str, frame: pl.DataFrame) -> Summary:
        """Append a section; returns self so sections chain."""
        self.sections.append((caption, frame))
        return self

    def renderable(self) -> RenderableType:
        """The summary as a rich renderable (what the CLI prints)."""
        parts: list[RenderableType] = [Text(self.title, style="bold underline")]
        for caption, frame in self.sections:
            parts += (
                [Text(caption, style="bold"), frame_table(frame)]
                if caption
                else [frame_table(frame)]
            )
        parts += [Text.from_markup(f"[dim]• {escape(n)}[/]") for n in self.notes]
        return Group(*parts)

    def __str__(self) -> str:
        buffer = io.StringIO()
        Console(file=buffer, width=PIPED_WIDTH, force_terminal=False, color_system=None).print(
            self.renderable()
        )
        return buffer.getvalue().rstrip() + "\n"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        from burstlab.charts import html_table  # altair is heavy; only notebooks get here

        parts = [f"<h3>{html.escape(self.title)}</h3>"]
        for caption, frame in self.sections:
            parts += [f"<h4>{html.escape(caption)}</h4>"] if caption else []
            parts.append(html_table(frame))
        parts += [f"<p><small>{html.escape(n)}</small></p>" for n in self.notes]
        return "".join(parts)


class Result:
    """Mixin for result objects: subclasses implement the three methods; notebooks then show
    ``summary()`` when the object is the last expression of a cell."""

    def summary(self) -> Summary:
        raise NotImplementedError

    def table(self) -> pl.DataFrame:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
