"""Save altair charts as HTML, PNG or SVG (vl-convert renders without a browser)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import altair as alt


def save_chart(
    chart: alt.TopLevelMixin, stem: str | Path, formats: Iterable[str] = ("html",)
) -> list[Path]:
    """Write `chart` as `stem.<fmt>` for each format; returns the paths written."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        chart.save(str(path), format=fmt)
        out.append(path)
    return out
