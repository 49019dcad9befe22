"""The charts a dataset card embeds: request rate over time and token-length distributions.

Charts are built from small aggregates (counts per bin, a few hundred quantiles), never from
every row, so a card for a 27 M-row trace renders as fast and as small as one for 20 k rows.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from burstlab.charts import ChartFormat, save_chart
from burstlab.scalars import number

#: Card charts are published files: PNG for the Hub's renderer, SVG for print.
FORMATS: tuple[ChartFormat, ...] = ("png", "svg")


def rate_bin_s(span_s: float) -> float:
    """Bin width (seconds) for a rate chart: about 60–600 bins across the trace."""
    for width in (1.0, 10.0, 60.0, 600.0, 3600.0):
        if span_s / width <= 600:
            return width
    return 86400.0


def rate_chart(frame: pl.DataFrame, title: str) -> alt.Chart:
    """Requests per second in fixed bins over the trace (x: seconds since the first request)."""
    span = number(frame["arrival_s"].max(), "arrival_s") if frame.height else 0.0
    width = rate_bin_s(span)
    counts = (
        frame.select(((pl.col("arrival_s") // width) * width).alias("t_s"))
        .group_by("t_s")
        .len()
        .with_columns((pl.col("len") / width).alias("rate_per_s"))
        .sort("t_s")
    )
    # bins without any request are real zeros, not gaps in the line
    full = pl.DataFrame({"t_s": np.arange(0.0, span + width, width)}).join(
        counts, on="t_s", how="left"
    )
    full = full.with_columns(pl.col("rate_per_s").fill_null(0.0))
    return (
        alt.Chart(full.select("t_s", "rate_per_s").to_pandas(), title=title)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("t_s:Q", title="time since first request (s)"),
            y=alt.Y("rate_per_s:Q", title=f"requests/s ({width:g} s bins)"),
        )
        .properties(width=640, height=220)
    )


def token_cdf_chart(frame: pl.DataFrame, title: str, points: int = 400) -> alt.Chart:
    """Empirical CDF of input and output tokens on a log axis (from `points` quantiles)."""
    probs = np.linspace(0.0, 1.0, points)
    pieces = []
    for col in ("input_tokens", "output_tokens"):
        values = frame[col].drop_nulls().cast(pl.Float64).to_numpy()
        values = values[values > 0]  # log axis: zero-token (failed) rows are stated elsewhere
        if values.size == 0:
            continue
        q = np.quantile(values, probs)
        pieces.append(pl.DataFrame({"tokens": q, "cdf": probs, "column": col}))
    data = pl.concat(pieces).to_pandas() if pieces else pl.DataFrame().to_pandas()
    return (
        alt.Chart(data, title=title)
        .mark_line()
        .encode(
            x=alt.X(
                "tokens:Q", scale=alt.Scale(type="log", nice=False), title="tokens (log scale)"
            ),
            y=alt.Y("cdf:Q", title="fraction of requests ≤ x"),
            color=alt.Color("column:N", title=None),
        )
        .properties(width=640, height=220)
    )


def save_card_chart(chart: alt.TopLevelMixin, out_dir: Path, stem: str) -> list[str]:
    """Save a chart as PNG and SVG under `out_dir/charts/`; paths relative to `out_dir`."""
    paths = save_chart(chart, out_dir / "charts" / stem, formats=FORMATS)
    return [p.relative_to(out_dir).as_posix() for p in paths]
