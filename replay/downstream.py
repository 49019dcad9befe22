"""Downstream fidelity (docs/design.md §4): the same server under a real and a synthetic load.

A synthetic workload is only as good as the serving numbers it produces, so both loads are
replayed with one configuration against one server, one after the other, and compared on p99
E2E latency, p99 TTFT and goodput. A ratio (synthetic ÷ real) near 1 means the synthetic load
stresses the server the way the real one does; this lives in replay/, the only stage that can
drive a server, and reads synth's output as an ordinary requests table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from burstlab import engines
from burstlab.atomic import check_out, write_json
from burstlab.engines import EngineHandle
from burstlab.errors import ReplayError, SchemaError, UsageError
from burstlab.parquet import write_atomic
from burstlab.progress import progress as progress_bar
from burstlab.replay.run import ReplayConfig, replay, target_engine
from burstlab.results import Result, Summary
from burstlab.scalars import number
from burstlab.spec import WorkloadSpec

#: Default widening of the real envelope before a verdict (the fidelity suite's, synth.suite).
SLACK = 0.25

#: (column, where in summary.json): the numbers compared between loads.
COMPARED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("p50_e2e_s", ("full", "e2e_s", "p50")),
    ("p99_e2e_s", ("full", "e2e_s", "p99")),
    ("p99_e2e_sched_s", ("full", "e2e_sched_s", "p99")),
    ("p99_ttft_s", ("full", "ttft_s", "p99")),
    ("attainment", ("goodput", "attainment")),
    ("goodput_rps", ("goodput", "goodput_rps")),
)


def _get(summary: Mapping, path: tuple[str, ...]) -> float | None:
    value: object = summary
    for key in path:
        if not isinstance(value, Mapping) or value.get(key) is None:
            return None
        value = value[key]
    return float(value)  # type: ignore[arg-type]


@dataclass
class LoadComparison(Result):
    """One row per load (`loads`), each load's run directory, and synthetic ÷ real ratios."""

    loads: pl.DataFrame
    runs: dict[str, Path]
    ratios: dict[str, float | None]

    def table(self) -> pl.DataFrame:
        return self.loads

    def summary(self) -> Summary:
        ratios = pl.DataFrame([{k: v for k, v in self.ratios.items()}])
        return (
            Summary("the same server under the real and the synthetic load")
            .add("per load", self.loads)
            .add("synthetic ÷ real", ratios)
        )

    def to_dict(self) -> dict:
        return {
            "loads": self.loads.to_dicts(),
            "ratios": self.ratios,
            "runs": {k: str(v) for k, v in self.runs.items()},
        }


def compare_loads(
    real: pl.DataFrame,
    synthetic: pl.DataFrame,
    config: ReplayConfig,
    out: str | Path,
    *,
    engine_info: dict | None = None,
    overwrite: bool = False,
) -> LoadComparison:
    """Replay `real` then `synthetic` with `config` into `<out>/real` and `<out>/synthetic`, and
    write the comparison to `<out>/comparison.json`.

    Goodput columns need `config.slo`. Each run keeps its full records, summary and report, so a
    surprising ratio can be traced to the requests behind it.
    """
    out = Path(out)
    rows, runs = [], {}
    for name, frame in (("real", real), ("synthetic", synthetic)):
        run_dir = out / name
        result = replay(frame, config, run_dir, engine_info=engine_info, overwrite=overwrite)
        summary = result.metrics.to_dict()
        counts = summary["counts"]
        rows.append(
            {
                "load": name,
                "requests": int(counts["scheduled"]),
                "completed": int(counts["completed"]),
                "failed": int(counts["failed"]),
                "offered_rps": summary["offered_rate_rps"],
                **{col: _get(summary, path) for col, path in COMPARED},
            }
        )
        runs[name] = run_dir
    table = pl.DataFrame(rows)
    real_row, synth_row = rows
    ratios = {
        col: (
            synth_row[col] / real_row[col] if real_row[col] and synth_row[col] is not None else None
        )
        for col, _ in COMPARED
    }
    result = LoadComparison(loads=table, runs=runs, ratios=ratios)
    write_json(out / "comparison.json", result.to_dict())
    return result


# --------------------------------------------------------------------------- many seeds
#
# One synthetic draw against one real window cannot tell a faithful generator from a lucky
# one. `downstream_fidelity` fits on the training part of a trace, replays K real windows of
# the held-out part, K of the training part, K synthetic seeds and K seeds of every peer
# baseline, each on a freshly started engine of one configuration and in interleaved order, and
# judges every generated side against the real windows by the rule of `judge` (below).

#: The per-window numbers judged downstream, in report order: column → meaning (units).
DOWNSTREAM_METRICS: dict[str, str] = {
    "p50_e2e_s": "median end-to-end latency (seconds)",
    "p99_e2e_s": "99th-percentile end-to-end latency (seconds)",
    "p99_ttft_s": "99th-percentile time to first token (seconds)",
    "p99_tpot_s": "99th-percentile time per output token (seconds)",
    "attainment": "share of requests within every SLO (0-1)",
    "goodput_rps": "requests within every SLO per second of run (requests/s)",
    "cache_hit_rate": "prompt tokens the engine served from its prefix cache ÷ prompt tokens",
}
#: Metrics where 1 is perfect: judged on their shortfall 1 − value (see `judge`).
SHORTFALL_METRICS = frozenset({"attainment"})
#: How much wider than the real spread a generated side's spread may be.
SPREAD_FACTOR = 1.5
#: Side names in tables and charts.
REAL_HELDOUT = "real (held-out)"
REAL_TRAIN = "real (training)"
SYNTH_SIDE = "burstlab"
#: Column of the records that holds the prompt tokens the engine reports as served from its
#: cache (llama.cpp ``timings.cache_n``, OpenAI ``usage.prompt_tokens_details.cached_tokens``).
CACHED_TOKENS_COLUMN = "prompt_tokens_cached"

RULE = (
    "a generated side is faithful on a metric when (1) the median of its K seeds lies in the "
    "real envelope [min, max] over all 2K real windows (K held-out, K training) widened by the "
    "slack — [min ÷ (1 + slack), max × (1 + slack)]; attainment is widened on its shortfall "
    "1 − attainment — and (2) its spread (max − min over seeds) is at most "
    "spread_factor × the real spread, the larger of the held-out and the training windows' "
    "max − min (K windows each, like for like with K seeds)"
)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def judge(
    metric: str,
    heldout: Sequence[float | None],
    training: Sequence[float | None],
    candidate: Sequence[float | None],
    *,
    slack: float = SLACK,
    spread_factor: float = SPREAD_FACTOR,
) -> dict[str, Any]:
    """Judge one generated side on one metric against the real windows (the rule is `RULE`).

    `heldout`, `training`: the metric over the real held-out and training windows; `candidate`:
    over the generated side's seeds (units of the metric; None/NaN values are left out). Returns
    the envelope (`real_low`, `real_high`), the accepted range of the median (`accept_low`,
    `accept_high`), the candidate's `median`, `min`, `max`, `spread`, the `real_spread` and
    `spread_limit`, and the verdicts `location_ok`, `spread_ok`, `faithful` (None when either
    side has no value: not measured)."""
    if slack < 0 or spread_factor < 0:
        raise UsageError(
            f"slack and spread factor must be ≥ 0, found {slack}, {spread_factor}",
            param="slack" if slack < 0 else "spread_factor",
        )
    held, train, cand = _finite(heldout), _finite(training), _finite(candidate)
    real = held + train
    row: dict[str, Any] = dict.fromkeys(
        ("real_low", "real_high", "accept_low", "accept_high", "real_spread", "spread_limit",
         "median", "min", "max", "spread", "location_ok", "spread_ok", "faithful")
    )  # fmt: skip
    row["metric"] = metric
    if cand:
        row.update(
            median=float(np.median(cand)),
            min=min(cand),
            max=max(cand),
            spread=max(cand) - min(cand),
        )
    if not real:
        return row
    lo, hi = min(real), max(real)
    widen = 1.0 + slack
    if metric in SHORTFALL_METRICS:  # 1 is perfect: widen the shortfall 1 − value
        accept = (1.0 - (1.0 - lo) * widen, 1.0 - (1.0 - hi) / widen)
    else:
        accept = (lo / widen, hi * widen)
    real_spread = max((max(g) - min(g)) for g in (held, train) if g)
    row.update(
        real_low=lo,
        real_high=hi,
        accept_low=accept[0],
        accept_high=accept[1],
        real_spread=real_spread,
        spread_limit=spread_factor * real_spread,
    )
    if not cand:
        return row
    tol = 1e-12 * max(1.0, abs(hi))  # float noise only
    location_ok = accept[0] - tol <= row["median"] <= accept[1] + tol
    spread_ok = row["spread"] <= row["spread_limit"] + tol
    row.update(location_ok=location_ok, spread_ok=spread_ok, faithful=location_ok and spread_ok)
    return row


def window_starts(start_s: float, end_s: float, count: int, length_s: float) -> list[float]:
    """`count` window starts (seconds) spread evenly over [start_s, end_s) so that every window
    of `length_s` seconds fits (the first at `start_s`, the last ending at `end_s`); windows
    overlap when the part is shorter than count × length_s. UsageError when none fits."""
    if count < 1:
        raise UsageError(f"need at least 1 window, found {count}", param="windows")
    if not length_s > 0:
        raise UsageError(f"must be > 0 seconds, found {length_s}", param="window_s")
    room = end_s - start_s - length_s
    if room < -1e-9:
        raise UsageError(
            f"a {length_s:g} s window does not fit the {end_s - start_s:g} s part "
            f"[{start_s:g}, {end_s:g})",
            param="window_s",
        )
    room = max(room, 0.0)
    if count == 1:
        return [float(start_s)]
    return [float(start_s + i * room / (count - 1)) for i in range(count)]


def cache_hit_rate(records: pl.DataFrame) -> float | None:
    """Prompt tokens the engine served from its prefix cache ÷ prompt tokens, over the
    successful requests, from the engine's own per-response report (`CACHED_TOKENS_COLUMN`);
    None when the records do not carry it."""
    if CACHED_TOKENS_COLUMN not in records.columns or records.is_empty():
        return None
    prompt = pl.coalesce("prompt_tokens_server", "prompt_tokens_client")
    ok = records.filter(pl.col("ok") & pl.col(CACHED_TOKENS_COLUMN).is_not_null())
    total = ok.select(prompt.sum()).item()
    if not total:
        return None
    return float(ok[CACHED_TOKENS_COLUMN].sum()) / float(total)


def _window_row(summary: Mapping, records: pl.DataFrame, has_hashes: bool) -> dict[str, Any]:
    """The judged numbers of one run (`DOWNSTREAM_METRICS`) from its summary.json and records."""
    counts = summary["counts"]
    return {
        "requests": int(counts["scheduled"]),
        "completed": int(counts["completed"]),
        "failed": int(counts["failed"]),
        "offered_rps": summary.get("offered_rate_rps"),
        "p50_e2e_s": _get(summary, ("full", "e2e_s", "p50")),
        "p99_e2e_s": _get(summary, ("full", "e2e_s", "p99")),
        "p99_ttft_s": _get(summary, ("full", "ttft_s", "p99")),
        "p99_tpot_s": _get(summary, ("full", "tpot_s", "p99")),
        "attainment": _get(summary, ("goodput", "attainment")),
        "goodput_rps": _get(summary, ("goodput", "goodput_rps")),
        "cache_hit_rate": cache_hit_rate(records) if has_hashes else None,
    }


@dataclass
class DownstreamFidelity(Result):
    """The same engine under K real windows (held-out and training), K synthetic seeds and K
    seeds of every baseline, judged against the real envelope.

    `runs`: one row per replay, in the order run (side, window/seed, trace start, engine pid,
    the `DOWNSTREAM_METRICS`); `verdicts`: one row per (generated side, metric) from `judge`;
    `speedup`: the time compression every replay used; `capacity_rps`: the engine's measured
    saturation throughput (requests/s, None when the speedup was given); `utilisation`: the
    real windows' mean offered rate ÷ capacity."""

    runs: pl.DataFrame
    verdicts: pl.DataFrame
    speedup: float
    capacity_rps: float | None
    utilisation: float | None
    utilisation_target: float | None
    train: tuple[float, float]
    heldout: tuple[float, float]
    window_s: float
    seeds: tuple[int, ...]
    slack: float
    spread_factor: float
    out: Path

    def table(self) -> pl.DataFrame:
        return self.runs

    def faithful(self, side: str = SYNTH_SIDE) -> dict[str, bool | None]:
        """Metric → verdict of `side` (None: not measured)."""
        rows = self.verdicts.filter(pl.col("side") == side)
        return dict(zip(rows["metric"], rows["faithful"], strict=True))

    def wide(self, column: str = "median") -> pl.DataFrame:
        """One row per metric: the real envelope, then `column` of every generated side."""
        piv = self.verdicts.pivot(on="side", index="metric", values=column)
        env = self.verdicts.select("metric", "real_low", "real_high").unique(
            "metric", maintain_order=True
        )
        return env.join(piv, on="metric", maintain_order="left")

    def summary(self) -> Summary:
        verdicts = {k: v for k, v in self.faithful().items() if v is not None}
        load = (
            f"utilisation {self.utilisation:.0%} of {self.capacity_rps:.3g} req/s"
            if self.utilisation is not None and self.capacity_rps is not None
            else "speedup given"
        )
        s = Summary(
            f"downstream fidelity over {len(self.seeds)} seeds: {self.window_s:g} s windows at "
            f"speedup ×{self.speedup:.3g} ({load}) — burstlab faithful on "
            f"{sum(verdicts.values())}/{len(verdicts)} metrics"
        )
        s.add("median over windows / seeds (real envelope beside it)", self.wide("median"))
        s.add(
            "faithful (median inside the widened envelope and spread ≤ limit)",
            self.wide("faithful"),
        )
        s.notes.append(f"rule: {RULE} (slack {self.slack:g}, spread factor {self.spread_factor:g})")
        return s

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": RULE,
            "slack": self.slack,
            "spread_factor": self.spread_factor,
            "speedup": self.speedup,
            "capacity_rps": self.capacity_rps,
            "utilisation": self.utilisation,
            "utilisation_target": self.utilisation_target,
            "train": list(self.train),
            "heldout": list(self.heldout),
            "window_s": self.window_s,
            "seeds": list(self.seeds),
            "runs": self.runs.to_dicts(),
            "verdicts": self.verdicts.to_dicts(),
        }


EngineFactory = Callable[[], EngineHandle]


def _engine_factory(
    engine: str | EngineFactory, parallel: int, data_dir: str | Path | None
) -> EngineFactory:
    if callable(engine):
        return engine
    if not isinstance(engine, str) or not engine:
        raise UsageError(
            f"expected an engine size (tiny, small, medium) or a function that starts one, "
            f"found {engine!r}",
            param="engine",
        )
    return lambda: engines.local(engine, parallel=parallel, data_dir=data_dir)


def _run_config(config: ReplayConfig, handle: EngineHandle, speedup: float, *, report: bool):
    sched = dataclasses.replace(config.schedule, speedup=speedup, window=None)
    config = dataclasses.replace(config, schedule=sched, progress=False, report=report)
    return target_engine(config, handle)


def saturation_rps(
    train: pl.DataFrame,
    config: ReplayConfig,
    start_engine: EngineFactory,
    run_dir: str | Path,
    *,
    requests: int = 64,
    seed: int = 0,
) -> float:
    """The engine's saturation throughput (requests/s) on the training mix: `requests`
    (input, output) pairs resampled from the successful `train` rows, all sent at once to a
    freshly started engine (so every slot stays busy and the rest queue), completed ÷ (last
    end − first send). Lengths are clipped as every replay of `config` clips them. One run,
    a quick stand-in for a full SLO capacity search (replay.capacity)."""
    if requests < 1:
        raise UsageError(f"must be ≥ 1, found {requests}", param="capacity_requests")
    ok = train.filter(~pl.col("failed").fill_null(False)) if "failed" in train.columns else train
    if ok.is_empty():
        raise UsageError("the training part has no successful request to probe with", param="train")
    pick = np.random.default_rng(seed).integers(0, ok.height, requests)
    burst = pl.DataFrame(
        {
            "source": ["capacity-probe"] * requests,
            "arrival_s": [0.0] * requests,
            "input_tokens": ok["input_tokens"].to_numpy()[pick],
            "output_tokens": ok["output_tokens"].to_numpy()[pick],
            "failed": [False] * requests,
        }
    )
    with start_engine() as handle:
        cfg = _run_config(config, handle, 1.0, report=False)
        cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, limit=None))
        result = replay(burst, cfg, run_dir, overwrite=True)
    done = result.records.filter(pl.col("ok"))
    if done.is_empty():
        raise ReplayError("the capacity probe completed no request; see " + str(run_dir))
    span = number(done["end_s"].max(), "end_s") - number(done["sent_s"].min(), "sent_s")
    return done.height / span if span > 0 else math.inf


def downstream_fidelity(
    trace: pl.DataFrame,
    config: ReplayConfig,
    out: str | Path,
    *,
    train: tuple[float, float],
    heldout: tuple[float, float] | None = None,
    windows: int = 5,
    window_s: float = 120.0,
    seed: int = 0,
    spec: WorkloadSpec | None = None,
    baselines: Sequence[str] | None = None,
    engine: str | EngineFactory = "tiny",
    parallel: int = 4,
    data_dir: str | Path | None = None,
    speedup: float | None = None,
    utilisation: float = 0.7,
    capacity_requests: int = 64,
    slack: float = SLACK,
    spread_factor: float = SPREAD_FACTOR,
    run_reports: bool = False,
    overwrite: bool = False,
) -> DownstreamFidelity:
    """Judge a generator downstream: the same engine under K real windows and K seeds.

    Fits `trace`'s training part `train` = (start, end) trace seconds (or uses `spec`), takes
    `windows` = K real windows of `window_s` seconds spread evenly over the held-out part
    (`heldout`, default from the training end to the last arrival) and K over the training
    part, generates K synthetic windows (seeds `seed` … `seed` + K − 1) and K of every peer
    baseline in `baselines` (synth/baselines.py, same seeds), and replays every window with
    `config` (its SLOs give attainment and goodput) on a freshly started engine — `engine`: a
    size for `engines.local` (with `parallel` slots) or a function returning a started
    `EngineHandle` — in interleaved order (held-out, training, burstlab, each baseline; then
    the next window), so drift of the machine hits every side alike.

    The time compression is `speedup`, or, when None, chosen so that the real windows' mean
    request rate is `utilisation` (0-1) of the engine's saturation throughput, measured first
    by `saturation_rps` with `capacity_requests` requests. Every side is judged per metric by
    `judge` (`RULE`, with `slack` and `spread_factor`). Runs land in `<out>/runs/`, the
    result in `<out>/downstream.json`, `<out>/runs.parquet`, `<out>/verdicts.parquet` and
    `<out>/report.html`.
    """
    # the stages above replay, through their faces: loaded only when judging
    from burstlab import synth
    from burstlab.fitting import fit

    window = synth.window

    if config.slo is None:
        raise UsageError("judging goodput needs SLOs (e.g. ttft=0.5,tpot=0.05)", param="slo")
    if speedup is not None and not (math.isfinite(speedup) and speedup > 0):
        raise UsageError(f"must be > 0, found {speedup}", param="speedup")
    if speedup is None and not 0 < utilisation <= 1:
        raise UsageError(f"must be in (0, 1], found {utilisation}", param="utilisation")
    if "arrival_s" not in trace.columns or trace.is_empty():
        raise SchemaError(f"expected a requests table with arrival_s, found {trace.columns}")
    last = number(trace["arrival_s"].max(), "arrival_s")
    train = _part(train, "train")
    heldout = (train[1], last) if heldout is None else _part(heldout, "heldout")
    train_starts = window_starts(*train, windows, window_s)
    try:
        held_starts = window_starts(*heldout, windows, window_s)
    except UsageError as exc:
        raise UsageError(exc.message, param="heldout") from None
    out = check_out(out, overwrite=overwrite)
    start_engine = _engine_factory(engine, parallel, data_dir)
    train_rows = window(trace, *train)
    seeds = tuple(seed + i for i in range(windows))
    peers = {sd: synth.all_baselines(train_rows, window_s, sd) for sd in seeds}  # vectorised: cheap
    known = list(peers[seeds[0]])
    baselines = tuple(known) if baselines is None else tuple(baselines)
    unknown = [b for b in baselines if b not in known]
    if unknown:
        raise UsageError(
            f"unknown baseline {unknown[0]!r}; expected some of {', '.join(known)}",
            param="baselines",
        )
    if spec is None:
        spec = fit(train_rows).spec

    # every window's requests first: a failure here costs no engine time
    plan: list[tuple[str, str, int, float | None, int | None, pl.DataFrame]] = []
    for i in range(windows):
        hs, ts, sd = held_starts[i], train_starts[i], seeds[i]
        plan.append((REAL_HELDOUT, "real", i, hs, None, window(trace, hs, hs + window_s)))
        plan.append((REAL_TRAIN, "real", i, ts, None, window(trace, ts, ts + window_s)))
        plan.append(
            (
                SYNTH_SIDE,
                "synthetic",
                i,
                None,
                sd,
                synth.generate(spec, duration_s=window_s, seed=sd).frame,
            )
        )
        for name in baselines:
            plan.append((name, "baseline", i, None, sd, peers[sd][name]))
    real_rate = float(np.mean([f.height for s, k, *_, f in plan if k == "real"])) / window_s

    capacity: float | None = None
    with progress_bar(disable=not config.progress) as bar:
        task = bar.add_task("downstream", total=len(plan) + (speedup is None))
        if speedup is None:
            bar.update(task, description="downstream: capacity probe")
            capacity = saturation_rps(
                train_rows, config, start_engine, out / "capacity", requests=capacity_requests,
                seed=seed,
            )  # fmt: skip
            speedup = utilisation * capacity / real_rate if real_rate > 0 else 1.0
            bar.advance(task)
        rows = []
        for n, (side, kind, i, start_s, sd, frame) in enumerate(plan):
            bar.update(task, description=f"downstream: {side} #{i}")
            run_dir = out / "runs" / f"{n:03d}-{_slug(side)}-{i}"
            with start_engine() as handle:
                cfg = _run_config(config, handle, speedup, report=run_reports)
                result = replay(frame, cfg, run_dir, engine_info=handle.info(), overwrite=True)
                pid, port, started = handle.process.pid, handle.port, handle.started_in_s
            has_hashes = "hash_ids" in frame.columns and frame["hash_ids"].is_not_null().any()
            row = _window_row(result.metrics.to_dict(), result.records, bool(has_hashes))
            offered = row["offered_rps"]
            rows.append(
                {
                    "order": n, "side": side, "kind": kind, "index": i, "start_s": start_s,
                    "seed": sd, "engine_pid": pid, "engine_port": port,
                    "engine_start_s": started, "run_dir": str(run_dir), **row,
                    "utilisation": (
                        offered / capacity if capacity and offered is not None else None
                    ),
                }
            )  # fmt: skip
            bar.advance(task)

    runs = pl.DataFrame(rows, schema_overrides=_RUN_SCHEMA, infer_schema_length=None)
    sides = [SYNTH_SIDE, *baselines]
    verdicts = _verdicts(runs, sides, slack=slack, spread_factor=spread_factor)
    result = DownstreamFidelity(
        runs=runs,
        verdicts=verdicts,
        speedup=float(speedup),
        capacity_rps=capacity,
        utilisation=real_rate * speedup / capacity if capacity else None,
        utilisation_target=utilisation if capacity is not None else None,
        train=train,
        heldout=heldout,
        window_s=float(window_s),
        seeds=seeds,
        slack=slack,
        spread_factor=spread_factor,
        out=out,
    )
    meta = {"rule": RULE, "speedup": result.speedup, "capacity_rps": capacity}
    write_atomic(runs, out / "runs.parquet", meta)
    write_atomic(verdicts, out / "verdicts.parquet", meta)
    write_json(out / "downstream.json", _clean(result.to_dict()))
    from burstlab.replay.downstream_report import write_report  # altair: only when reporting

    write_report(
        result, out / "report.html", metrics=DOWNSTREAM_METRICS,
        real_sides=(REAL_HELDOUT, REAL_TRAIN), rule=RULE,
    )  # fmt: skip
    return result


#: Types of the runs table's columns that may be all null (so the Parquet file is typed).
_RUN_SCHEMA: dict[str, pl.DataType] = {
    "start_s": pl.Float64(),
    "seed": pl.Int64(),
    "offered_rps": pl.Float64(),
    "utilisation": pl.Float64(),
    **{m: pl.Float64() for m in DOWNSTREAM_METRICS},
}


def _part(part: Sequence[float], param: str) -> tuple[float, float]:
    """(start, end) trace seconds, checked: UsageError unless 0 ≤ start < end < ∞."""
    try:
        lo, hi = (float(v) for v in part)
    except (TypeError, ValueError):
        raise UsageError(f"expected (start, end) in seconds, found {part!r}", param=param) from None
    if not (0 <= lo < hi < math.inf):
        raise UsageError(f"expected 0 ≤ start < end, found {lo:g}:{hi:g}", param=param)
    return lo, hi


def _slug(side: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in side).strip("-").replace("--", "-")


def _verdicts(
    runs: pl.DataFrame, sides: Sequence[str], *, slack: float, spread_factor: float
) -> pl.DataFrame:
    """One `judge` row per (generated side, metric)."""
    rows = []
    for side in sides:
        for metric in DOWNSTREAM_METRICS:

            def values(name: str, metric: str = metric) -> list[float | None]:
                return runs.filter(pl.col("side") == name)[metric].to_list()

            row = judge(
                metric, values(REAL_HELDOUT), values(REAL_TRAIN), values(side),
                slack=slack, spread_factor=spread_factor,
            )  # fmt: skip
            rows.append({"side": side, **row})
    schema = {
        "side": pl.String(),
        "metric": pl.String(),
        **{
            k: pl.Float64()
            for k in ("real_low", "real_high", "accept_low", "accept_high", "real_spread",
                      "spread_limit", "median", "min", "max", "spread")
        },
        **{k: pl.Boolean() for k in ("location_ok", "spread_ok", "faithful")},
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def _clean(obj: Any) -> Any:
    """`obj` with NaN and infinities as None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj
