"""Charts and HTML reports: altair charts saved as HTML, PNG or SVG (vl-convert renders
without a browser), and one page builder that every stage's report uses.

HTML inlines the chart library, so a report opens on an air-gapped cluster or from a CI
artifact with no network, not only where a CDN is reachable.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import altair as alt
import polars as pl

from burstlab.atomic import write_text

#: The file formats altair's `save` writes (PNG, SVG and PDF through vl-convert).
ChartFormat = Literal["html", "png", "svg", "pdf", "json"]


def save_chart(
    chart: alt.TopLevelMixin, stem: str | Path, formats: Iterable[ChartFormat] = ("html",)
) -> list[Path]:
    """Write `chart` as `stem.<fmt>` for each format; returns the paths written."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        if fmt == "html":
            chart.save(str(path), format=fmt, inline=True)
        else:
            chart.save(str(path), format=fmt)
        out.append(path)
    return out


def html_table(frame: pl.DataFrame, *, digits: int = 4) -> str:
    """A polars frame as an HTML table: floats to `digits` significant digits, missing values
    and NaN as '-', booleans as yes/no with a green/red cell (verdict tables read at a glance)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.iter_rows():
        cells = []
        for v in row:
            if isinstance(v, bool):
                cells.append(f"<td class={'ok' if v else 'bad'}>{'yes' if v else 'no'}</td>")
                continue
            if v is None or (isinstance(v, float) and math.isnan(v)):
                text = "-"
            elif isinstance(v, float):
                text = f"{v:.{digits}g}"
            else:
                text = str(v)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
    ".ok{background:#dfd}.bad{background:#fdd}p.note{color:#444}"
)


def write_html_report(
    dest: str | Path,
    *,
    title: str,
    intro: str = "",
    notes: Sequence[str] = (),
    tables: Sequence[tuple[str, pl.DataFrame]] = (),
    chart: alt.TopLevelMixin | None = None,
    digits: int = 4,
) -> Path:
    """Write a self-contained HTML report: a title, an intro (trusted HTML), notes (escaped),
    captioned tables, then the chart. Written atomically (temp file, then rename)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        intro,
    ]
    parts += [f"<p class=note>{html.escape(n)}</p>" for n in notes]
    for caption, table in tables:
        parts += [f"<h2>{html.escape(caption)}</h2>", html_table(table, digits=digits)]
    if chart is not None:
        parts += ["<h2>Charts</h2>", chart.to_html(fullhtml=False, inline=True)]
    parts.append("</body></html>")
    return write_text(dest, "".join(parts))
