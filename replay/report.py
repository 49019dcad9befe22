"""HTML reports of a run (and of a capacity search), as altair charts in one page.

Charts are built from the records on disk, binned or thinned so a page stays small for a
million-request run: rates and lag per time bin, at most `MAX_POINTS` points per scatter, CDFs
at 200 quantiles.
"""

from __future__ import annotations

import html
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from burstlab.charts import save_chart, write_html_report
from burstlab.replay.metrics import bin_width, lag_over_time, per_request, time_span
from burstlab.replay.summary import RunSummary

MAX_POINTS = 4000
CDF_POINTS = 200
_BANNER_STYLE = (
    "background:#fdecea;border:2px solid #b3261e;color:#5f1410;padding:10px 14px;"
    "margin:12px 0;font-weight:600;border-radius:4px"
)


def banners(summary: RunSummary) -> str:
    """HTML banners (escaped text) for what makes a run's numbers suspect: the client
    saturated (they include its own delay), a client process died."""
    lines = []
    saturation = summary.client_saturation
    if saturation is not None and saturation.saturated:
        lines.append(f"Client saturated — {saturation.warning()}")
    for w in summary.lost_workers():
        lines.append(
            f"Client process {w.id} {w.exit}: {w.requests:,} of its {w.planned:,} requests "
            "finished and were kept; the rest were never sent or their records were lost."
        )
    return "".join(
        f"<div class='banner' role='alert' style='{_BANNER_STYLE}'>{html.escape(t)}</div>"
        for t in lines
    )


def rates(records: pl.DataFrame, bin_s: float) -> pl.DataFrame:
    """Offered (intended), sent and completed requests per second, per bin (long format)."""
    parts = []
    for label, col, flt in (
        ("offered (schedule)", "intended_s", pl.lit(True)),
        ("sent", "sent_s", pl.col("sent_s").is_not_null()),
        ("completed ok", "end_s", pl.col("ok")),
    ):
        parts.append(
            records.filter(flt)
            .select(t=(pl.col(col) / bin_s).floor() * bin_s)
            .group_by("t")
            .len()
            .select("t", rate=pl.col("len") / bin_s, series=pl.lit(label))
        )
    return pl.concat(parts).sort("series", "t")


def in_flight(records: pl.DataFrame, bin_s: float) -> pl.DataFrame:
    """Requests open (sent, not ended) at each bin edge."""
    sent = records.filter(pl.col("sent_s").is_not_null())
    if sent.height == 0:
        return pl.DataFrame({"t": [], "in_flight": []})
    starts = np.sort(sent["sent_s"].to_numpy())
    ends = np.sort(sent["end_s"].to_numpy())
    grid = np.arange(0.0, float(ends.max()) + bin_s, bin_s)
    open_ = np.searchsorted(starts, grid, "right") - np.searchsorted(ends, grid, "right")
    return pl.DataFrame({"t": grid, "in_flight": open_})


def _thin(frame: pl.DataFrame, n: int = MAX_POINTS) -> pl.DataFrame:
    return frame if frame.height <= n else frame.sample(n, seed=0).sort("sent_s")


def _cdf(frame: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    qs = np.linspace(0, 1, CDF_POINTS)
    parts = []
    for c in cols:
        v = frame[c].drop_nulls().to_numpy()
        if len(v):
            parts.append(pl.DataFrame({"value_s": np.quantile(v, qs), "fraction": qs, "metric": c}))
    return (
        pl.concat(parts) if parts else pl.DataFrame({"value_s": [], "fraction": [], "metric": []})
    )


def run_charts(records: pl.DataFrame, summary: RunSummary) -> alt.VConcatChart:
    """All run charts stacked: rates, lag, in-flight, latencies over time, CDFs."""
    pr = per_request(records)
    bin_s = bin_width(float(summary.get("duration_s") or 1.0))
    span = time_span(records["intended_s"]) if records.height else 1.0
    lag_bin_s = bin_width(max(span, 0.01))
    width = 640
    rate = (
        alt.Chart(rates(records, bin_s))
        .mark_line(interpolate="step-after", point=True)
        .encode(
            x=alt.X("t:Q", title="run time (s)"),
            y=alt.Y("rate:Q", title=f"requests/s ({bin_s:g} s bins)"),
            color="series:N",
        )
        .properties(title="Offered vs achieved rate", width=width, height=180)
    )
    lag = (
        lag_over_time(records, lag_bin_s)
        .unpivot(index="t", on=["p50", "p99", "max"], variable_name="stat", value_name="lag_s")
        .with_columns(lag_ms=pl.col("lag_s") * 1000)
    )
    lag_chart = (
        alt.Chart(lag)
        .mark_line(point=True)
        .encode(
            x=alt.X("t:Q", title="intended time (s)"),
            y=alt.Y("lag_ms:Q", title="schedule lag (ms)"),
            color="stat:N",
        )
        .properties(title="Schedule lag (sent − intended) over time", width=width, height=160)
    )
    flight = (
        alt.Chart(in_flight(records, bin_s))
        .mark_area(interpolate="step-after", opacity=0.6)
        .encode(x=alt.X("t:Q", title="run time (s)"), y=alt.Y("in_flight:Q", title="in flight"))
        .properties(title="Requests in flight", width=width, height=140)
    )
    ok = pr.filter(pl.col("ok"))
    metrics = ["ttft_s", "tpot_s", "e2e_s", "e2e_sched_s"]
    lat = (
        # one chart row per request AND metric: thin the requests so the rows stay ≤ MAX_POINTS
        _thin(ok.select("sent_s", *metrics), MAX_POINTS // len(metrics))
        .unpivot(index="sent_s", variable_name="metric", value_name="value_s")
        .drop_nulls()
    )
    over_time = (
        alt.Chart(lat)
        .mark_point(size=8, opacity=0.5)
        .encode(
            x=alt.X("sent_s:Q", title="sent (s)"),
            y=alt.Y("value_s:Q", title="seconds", scale=alt.Scale(type="log")),
            color="metric:N",
        )
        .properties(title="TTFT / TPOT / E2E over time", width=width, height=200)
    )
    cdf = (
        alt.Chart(_cdf(ok, ["ttft_s", "ttft_sched_s", "tpot_s", "e2e_s", "e2e_sched_s"]))
        .mark_line()
        .encode(
            x=alt.X("value_s:Q", title="seconds", scale=alt.Scale(type="log")),
            y=alt.Y("fraction:Q", title="fraction of requests"),
            color="metric:N",
        )
        .properties(title="Latency CDFs (service vs schedule anchored)", width=width, height=200)
    )
    counts = summary.counts
    title = (
        f"burstlab replay: {counts.completed}/{counts.scheduled} ok, "
        f"{counts.failed} failed, {counts.dropped} dropped"
    )
    return (
        alt.vconcat(rate, lag_chart, flight, over_time, cdf)
        .resolve_scale(color="independent")
        .resolve_legend(color="independent")
        .properties(title=title)
    )


def run_report(run_dir: str | Path, records: pl.DataFrame, summary: RunSummary) -> Path:
    """Write `<run_dir>/report.html`: the run's summary tables (what `summary()` prints), the
    steady-state latencies, then the charts."""
    shown = ("mean", "p50", "p90", "p99", "max")
    steady = summary.latency_table(steady=True).select(
        "metric", "count", *[(pl.col(k) * 1000).alias(f"{k} ms") for k in shown]
    )
    s = summary.summary()
    return write_html_report(
        Path(run_dir) / "report.html",
        title=f"burstlab replay: {Path(run_dir).name}",
        intro=banners(summary),
        notes=s.notes,
        tables=[*s.sections, ("latency, steady state", steady)],
        chart=run_charts(records, summary),
    )


def capacity_report(out: str | Path, probes: pl.DataFrame, target: float) -> Path:
    """Goodput and attainment vs offered load for a capacity search → `<out>/report.html`."""
    base = alt.Chart(probes).encode(x=alt.X("offered_rps:Q", title="offered load (req/s)"))
    att = base.mark_line(point=True).encode(y=alt.Y("attainment:Q", title="SLO attainment"))
    rule = (
        alt.Chart(pl.DataFrame({"target": [target]}))
        .mark_rule(strokeDash=[4, 4])
        .encode(y="target:Q")
    )
    good = base.mark_line(point=True, color="green").encode(
        y=alt.Y("goodput_rps:Q", title="goodput (good req/s)")
    )
    chart = alt.vconcat(
        (att + rule).properties(title="Attainment vs load", width=560, height=200),
        good.properties(title="Goodput vs load", width=560, height=200),
    )
    return save_chart(chart, Path(out) / "report", ("html",))[0]
