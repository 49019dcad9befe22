"""Summary numbers a dataset card states, computed from the table itself, and Markdown tables.

Every number in a card body comes from here (or from the fitting stage), computed on the
exact Parquet file the card ships, so a reader can recompute it with one polars query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from burstlab.scalars import integer, number

#: Percentiles a card reports for token counts.
PERCENTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class TokenStats:
    """Distribution of one token column (tokens)."""

    column: str
    mean: float
    p50: float
    p90: float
    p99: float
    min: int
    max: int


@dataclass(frozen=True)
class RequestSummary:
    """What a card says about a canonical `requests` table.

    `span_s` is the last arrival minus the first (seconds), `rate_per_s` = rows / span_s
    (requests per second; 0 for a one-row table). `groups` counts rows per model and kind.
    """

    rows: int
    span_s: float
    rate_per_s: float
    failed: int
    tokens: tuple[TokenStats, ...]
    groups: dict[str, dict[str, int]] = field(default_factory=dict)


def summarize_requests(frame: pl.DataFrame) -> RequestSummary:
    """Rows, time span, mean rate, failures, token percentiles and group counts of `frame`."""
    rows = frame.height
    span = 0.0
    if rows:
        arrival = frame["arrival_s"]
        span = number(arrival.max(), "arrival_s") - number(arrival.min(), "arrival_s")
    tokens = tuple(_token_stats(frame, c) for c in ("input_tokens", "output_tokens"))
    groups = {}
    for col in ("model", "kind"):
        if col in frame.columns and frame[col].null_count() < rows:
            counts = frame.group_by(col).len().sort(["len", col], descending=[True, False])
            groups[col] = {str(k): int(n) for k, n in counts.iter_rows()}
    return RequestSummary(
        rows=rows,
        span_s=span,
        rate_per_s=rows / span if span > 0 else 0.0,
        failed=int(frame["failed"].sum()) if "failed" in frame.columns else 0,
        tokens=tokens,
        groups=groups,
    )


def _token_stats(frame: pl.DataFrame, column: str) -> TokenStats:
    values = frame[column].drop_nulls()
    q = [number(values.quantile(p, interpolation="linear"), column) for p in PERCENTILES]
    return TokenStats(
        column=column,
        mean=number(values.mean(), column),
        p50=q[0],
        p90=q[1],
        p99=q[2],
        min=integer(values.min(), column),
        max=integer(values.max(), column),
    )


def fmt(value: Any, digits: int = 3) -> str:
    """A number as a card prints it: thousands separators, `digits` significant decimals."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.1f}"
        return f"{value:.{digits}g}"
    return str(value)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; cells are formatted with `fmt` and pipes escaped."""
    cells = [[fmt(c).replace("|", r"\|") for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def describe_markdown(frame: pl.DataFrame) -> str:
    """Rows, then count / mean / percentiles / max of every numeric column (any table kind)."""
    numeric = [c for c, t in frame.schema.items() if t.is_numeric()]
    rows = []
    for col in numeric:
        s = frame[col].drop_nulls().cast(pl.Float64)
        if s.len() == 0:
            continue
        q = [s.quantile(p, interpolation="linear") for p in (0.5, *PERCENTILES[1:])]
        rows.append([f"`{col}`", s.len(), round(float(s.mean()), 4), *q, float(s.max())])
    head = f"{frame.height:,} rows."
    if not rows:
        return head
    return head + "\n\n" + md_table(["column", "values", "mean", "p50", "p90", "p99", "max"], rows)


def kv_table(rows: Sequence[Sequence[Any]]) -> str:
    """A two-column key/value table; rows whose value is None (not recorded) are left out."""
    return md_table(["", ""], [r for r in rows if r[1] is not None])


def summary_markdown(s: RequestSummary) -> str:
    """The "Summary statistics" section body for a requests table."""
    overview = md_table(
        ["rows", "time span (s)", "mean rate (req/s)", "failed rows"],
        [[s.rows, round(s.span_s, 3), round(s.rate_per_s, 4), s.failed]],
    )
    tokens = md_table(
        ["column (tokens)", "mean", "p50", "p90", "p99", "min", "max"],
        [[t.column, round(t.mean, 1), t.p50, t.p90, t.p99, t.min, t.max] for t in s.tokens],
    )
    parts = [overview, "", tokens]
    for col, counts in s.groups.items():
        parts += ["", md_table([col, "rows"], list(counts.items()))]
    return "\n".join(parts)


def render_sections(title: str, sections: list[tuple[str, str]]) -> str:
    """A card body: `# title`, then one `## heading` per non-empty section."""
    parts = [f"# {title}"]
    parts += [f"## {head}\n\n{text.strip()}" for head, text in sections if text and text.strip()]
    return "\n\n".join(parts) + "\n"
