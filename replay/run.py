"""One replay run, end to end: source → schedule → prompts → timed client → run directory.

Run directory layout (read by the docs/cards stage):
  run.json                 config: target, endpoint, model, engine info, schedule options,
                           SLO, source, seed, wall-clock start, burstlab version
  records/part-NNNNN.parquet  per-request records (records.RECORD_SCHEMA), written during the run
                           (records/wKKK-part-NNNNN.parquet: worker K's, when several
                           client processes send the load; see replay/workers.py)
  summary.json             metric dictionary names (+ `vllm_bench_serve` with vLLM key names)
  report.html              altair report
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import secrets
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from burstlab import __version__
from burstlab.atomic import write_json
from burstlab.engines import EngineHandle, require
from burstlab.errors import ReplayError, UsageError
from burstlab.progress import progress as progress_bar
from burstlab.replay.client import (
    ENDPOINT_PATHS,
    ClientOptions,
    LiveStats,
    Plan,
    ReplayClient,
    run_async,
)
from burstlab.replay.goodput import SLO, goodput
from burstlab.replay.metrics import context_outcome, per_request, summarize, vllm_keys
from burstlab.replay.prompts import (
    PROBE_REQ_ID,
    HFTokenizerCounter,
    PromptBuilder,
    PromptSet,
    WordCounter,
    request_body,
    server_counter,
)
from burstlab.replay.ray_workers import check_address, require_ray, run_ray_workers
from burstlab.replay.records import read_records
from burstlab.replay.report import run_report
from burstlab.replay.schedule import (
    Schedule,
    ScheduleOptions,
    apply_context,
    build_schedule,
    check_prompt_lengths,
)
from burstlab.replay.summary import ContextFit, RunSummary, WorkerOutcome
from burstlab.replay.target import (
    check_url,
    context_length,
    first_model,
    measure_overhead,
    server_info,
)
from burstlab.replay.workers import (
    PER_WORKER_RPS,
    ParallelRun,
    WorkerWriter,
    available_cores,
    check_workers,
    peak_rate,
    resolve_workers,
    run_workers,
)
from burstlab.results import Result, Summary

#: `ReplayConfig.source` when the caller did not name the load.
DEFAULT_SOURCE = "<frame>"
#: `workers="auto"` with Ray: the most actors the busiest second may ask for (not this machine's
#: cores: the actors run on the cluster's).
RAY_AUTO_CAP = 1024
#: What needs the optional package tokenizers (extra `tokenizers`).
TOKENIZER_PURPOSE = "exact prompt lengths from a tokenizer.json"


class ContextWarning(UserWarning):
    """Scheduled requests do not fit the context length the server reported (see
    `ContextFit.warning`); issued by `replay` unless `ReplayConfig.on_context` takes it."""


@dataclass
class ReplayConfig:
    """Everything one run needs besides the request table. Times in seconds.

    tokenizer: a Hugging Face tokenizer.json for exact prompt lengths; else the server's
        /tokenize is probed (`probe_tokenize`), else one word = one token (estimate).
    engine_extras: send ignore_eos / min_tokens so outputs have exactly the trace's length.
    seed: prompt text seed. None (default) draws a fresh one per run (written to run.json), so
        a second run against the same server — a capacity probe, a repeat — finds nothing of
        the first in its prefix cache; give one to reproduce a run's exact texts.
    warmup / drain: fractions of the schedule span left out of the steady-state block.
    on_context: called once before the run with the schedule against the server's context
        length (`ContextFit`: how many requests do not fit, what is done with them); None
        issues its one-line `ContextFit.warning()` as a `ContextWarning` when some do not fit.
    workers: client processes that send the load (replay/workers.py). 1 (default): this
        process, as always; N: N processes on this machine, each sending its shard of the one
        schedule from one shared start instant; "auto": as many as the schedule's busiest
        second needs at `workers.PER_WORKER_RPS` requests/s each, at most one per core.
    ray: None (default): the workers above are processes of this machine. Else they are Ray
        actors spread over a Ray cluster's nodes (replay/ray_workers.py; needs the extra
        ``ray``): "local" starts a cluster in this process, "auto" joins the one this host
        belongs to, ``HOST:PORT`` another. "auto" workers are then not capped by this
        machine's cores; run.json's ``workers.ray`` says where each ran, its clock offset and
        the schedule lag per node.
    """

    client: ClientOptions
    schedule: ScheduleOptions = field(default_factory=ScheduleOptions)
    model: str | None = None
    tokenizer: str | None = None
    probe_tokenize: bool = True
    engine_extras: bool = True
    seed: int | None = None
    slo: SLO | None = None
    warmup: float = 0.1
    drain: float = 0.1
    vllm_keys: bool = False
    report: bool = True
    progress: bool = True
    source: str = DEFAULT_SOURCE
    flush_every: int = 2000
    flush_s: float = 2.0
    on_context: Callable[[ContextFit], None] | None = field(default=None, repr=False, compare=False)
    workers: int | Literal["auto"] = 1
    ray: str | None = None


@dataclass
class RunResult(Result):
    """A finished (or interrupted) run: where it is (`run_dir`), what it measured (`metrics`,
    also in ``summary.json``), its schedule and prompts. ``table()`` is one row per request
    with its latencies (seconds)."""

    run_dir: Path
    metrics: RunSummary
    schedule: Schedule
    prompts: PromptSet
    interrupted: bool = False

    @property
    def records(self) -> pl.DataFrame:
        """The raw per-request records (every chunk time), read from the run folder."""
        return read_records(self.run_dir)

    def table(self) -> pl.DataFrame:
        return per_request(self.records)

    def summary(self) -> Summary:
        s = self.metrics.summary()
        s.title = f"{s.title} — {self.run_dir}"
        return s

    def to_dict(self) -> dict[str, Any]:
        return self.metrics.to_dict()


def target_engine(
    config: ReplayConfig, handle: EngineHandle, *, reserve_tokens: int = 16
) -> ReplayConfig:
    """`config` pointed at a local engine: its URL and model, and prompt/output lengths clipped
    to one slot's context (outputs to 256 tokens unless `config` already clips them; prompts to
    what is left, less `reserve_tokens` for the chat template). UsageError when the lengths
    `config` asks for cannot fit a slot."""
    sched = config.schedule
    per_slot = handle.ctx_per_slot
    max_out = sched.max_output_tokens or 256
    max_in = sched.max_input_tokens or per_slot - max_out - reserve_tokens
    if max_in + max_out > per_slot:
        raise UsageError(
            f"input + output tokens ({max_in} + {max_out}) exceed the engine's {per_slot}-token "
            "slots; clip them lower",
            param="max_input_tokens",
        )
    return dataclasses.replace(
        config,
        client=dataclasses.replace(config.client, url=handle.base_url),
        schedule=dataclasses.replace(sched, max_input_tokens=max_in, max_output_tokens=max_out),
        model=handle.model,
    )


def build_prompts(schedule: Schedule, config: ReplayConfig, model: str | None) -> PromptSet:
    """Prompt texts with the schedule's input lengths, using the best token counter available."""
    opts = config.client
    headers = {"Authorization": f"Bearer {opts.api_key}"} if opts.api_key else None
    counter: Any
    if config.tokenizer:
        counter = HFTokenizerCounter(config.tokenizer)
    else:
        counter = (server_counter(opts.url, model, headers) if config.probe_tokenize else None) or (
            WordCounter()
        )
    builder = PromptBuilder(counter, seed=config.seed or 0)
    overhead = 0
    if config.probe_tokenize and schedule.n:
        probe = builder.build([PROBE_REQ_ID], [32])
        measured = measure_overhead(
            opts.url,
            opts.endpoint,
            model,
            probe.texts[0],
            probe.client_tokens[0],
            opts.api_key,
            timeout_s=min(opts.read_timeout_s or opts.timeout_s, 30.0),
        )
        overhead = max(0, measured or 0)
    builder.overhead = overhead
    t = schedule.table
    hash_ids = t["hash_ids"].to_list() if t["hash_ids"].is_not_null().any() else None
    prompts = builder.build(t["req_id"].to_list(), t["input_tokens"].to_list(), hash_ids)
    if hasattr(counter, "close"):
        counter.close()
    return prompts


def make_plan(
    schedule: Schedule, prompts: PromptSet, config: ReplayConfig, model: str | None
) -> Plan:
    """Parallel lists the client reads on its hot path, request bodies already bytes."""
    t = schedule.table
    position = {rid: i for i, rid in enumerate(t["req_id"].to_list())}
    follows = [-1 if f is None else position.get(f, -1) for f in t["follows"].to_list()]
    bodies = [
        request_body(config.client.endpoint, model, text, n, engine_extras=config.engine_extras)
        for text, n in zip(prompts.texts, t["output_tokens"].to_list(), strict=True)
    ]
    return Plan(
        req_id=t["req_id"].to_list(),
        intended_s=t["intended_s"].to_list(),
        bodies=bodies,
        input_tokens=t["input_tokens"].to_list(),
        prompt_tokens_client=prompts.client_tokens if prompts.exact else [None] * t.height,
        output_tokens_target=t["output_tokens"].to_list(),
        session_id=t["session_id"].to_list(),
        turn=t["turn"].to_list(),
        follows=follows,
        think_s=t["think_s"].to_list(),
        oversized=t["oversized"].to_list() if "oversized" in t.columns else None,
        intended_cached=prompts.intended_cached,
    )


def replay(
    requests: pl.DataFrame | pl.LazyFrame,
    config: ReplayConfig,
    out: str | Path,
    *,
    engine_info: dict | None = None,
    overwrite: bool = False,
    workers: int | Literal["auto"] | None = None,
) -> RunResult:
    """Replay `requests` against config.client.url and write the run directory `out`.

    `workers` (when given) replaces `config.workers`: how many client processes send the load
    (1: this one; N; "auto"). Records and summary of an N-process run are those of one process
    but for each record's `worker_id`; the summary's `workers` says how each process ended, and
    `client_saturated` whether the load generator itself fell behind.

    Before anything is sent: the config and the table are checked (UsageError, InputError,
    ReplayError for an empty schedule, MissingExtraError for a tokenizer without its extra —
    one line each, and no run folder is made), and the schedule is checked against the context
    length the server reports (`fit_context`: counted, announced, sent / skipped / clipped as
    `config.schedule.fit_context` says, recorded in run.json, the records and summary.json).

    Ctrl-C (KeyboardInterrupt) stops sending, records in-flight requests as cancelled, and still
    writes records and summary; the result then has `interrupted=True`. An `out` that already
    holds a run is refused unless `overwrite` (then that run's files are removed, once the new
    run is sure to start).
    """
    run_dir = Path(out)
    _check_out(run_dir, overwrite)
    if workers is not None:
        config = dataclasses.replace(config, workers=workers)
    check_config(config)
    if not isinstance(requests, pl.DataFrame | pl.LazyFrame):
        raise UsageError(
            f"expected a polars DataFrame or LazyFrame, found {type(requests).__name__}",
            param="requests",
        )
    schedule = build_schedule(requests, config.schedule)
    if schedule.n == 0:
        raise ReplayError(
            f"the schedule is empty (counts {schedule.counts}); check the window and the limit"
        )
    if config.source == DEFAULT_SOURCE and "source" in requests.lazy().collect_schema().names():
        # a frame from Python: name it after its own `source` column (dataset ids) when it has one
        names = requests.lazy().select(pl.col("source").unique().sort()).collect().to_series()
        if 0 < names.len() <= 3 and names.null_count() == 0:
            config = dataclasses.replace(config, source=",".join(names.to_list()))
    if config.seed is None:
        config = dataclasses.replace(config, seed=secrets.randbits(31))
    info = server_info(config.client.url, config.client.api_key)
    model = config.model or first_model(info)
    schedule, fit = fit_context(schedule, info, model, config)
    check_prompt_lengths(schedule)
    prompts = build_prompts(schedule, config, model)
    plan = make_plan(schedule, prompts, config, model)
    n_workers = resolve_workers(
        config.workers, plan, cores=RAY_AUTO_CAP if config.ray is not None else None
    )
    run_json = {
        "burstlab_version": __version__,
        "source": config.source,
        "target": config.client.public(),
        "model": model,
        "engine": {**info, **(engine_info or {})},
        "schedule": {**config.schedule.to_dict(), "counts": schedule.counts,
                     "span_s": schedule.span_s},
        "context": fit.plan_dict(),
        "prompts": {"counter": prompts.counter, "exact": prompts.exact,
                    "overhead_tokens": prompts.overhead, "vocabulary": prompts.vocabulary},
        "engine_extras": config.engine_extras,
        "slo": config.slo.to_dict() if config.slo else None,
        "seed": config.seed,
        "pid": os.getpid(),
        "workers": {
            "asked": config.workers, "used": n_workers, "cores": available_cores(),
            "per_worker_rps": PER_WORKER_RPS, "peak_rps": peak_rate(plan.intended_s),
        },
    }  # fmt: skip
    _prepare_out(run_dir, overwrite)
    run_json["started_utc"] = dt.datetime.now(dt.timezone.utc).isoformat()
    write_json(run_dir / "run.json", run_json)
    if config.ray is not None:
        with _progress(config.progress, plan) as tick:
            sent = run_ray_workers(
                plan, config.client, run_dir / "records", n_workers, config.ray,
                flush_every=config.flush_every, flush_s=config.flush_s, on_tick=tick,
            )  # fmt: skip
        if sent.ray is not None:
            run_json["workers"]["ray"] = sent.ray.to_dict()
    elif n_workers == 1:
        sent = _send_here(plan, config, run_dir)
    else:
        with _progress(config.progress, plan) as tick:
            sent = run_workers(
                plan, config.client, run_dir / "records", n_workers,
                flush_every=config.flush_every, flush_s=config.flush_s, on_tick=tick,
            )  # fmt: skip
    if sent.t0_unix is not None:
        # run-clock 0 on the wall clock: every record's *_s + this = a UTC time
        run_json["t0_utc"] = dt.datetime.fromtimestamp(sent.t0_unix, dt.timezone.utc).isoformat()
        write_json(run_dir / "run.json", run_json)
    metrics = finish(
        run_dir, config, scheduled=schedule.n, interrupted=sent.interrupted, client=sent.stats,
        context=fit, workers=sent.workers, client_reasons=sent.reasons,
        client_errors=sent.client_errors,
    )  # fmt: skip
    return RunResult(run_dir, metrics, schedule, prompts, sent.interrupted)


def _send_here(plan: Plan, config: ReplayConfig, run_dir: Path) -> ParallelRun:
    """Send `plan` from this process (one client, worker 0), as a `ParallelRun` of one."""
    writer = WorkerWriter(
        run_dir / "records", worker_id=0, flush_every=config.flush_every, flush_s=config.flush_s
    )
    client = ReplayClient(plan, config.client, writer)
    interrupted = False
    with _progress(config.progress, plan) as tick:
        client.on_tick = tick
        try:
            run_async(client.run())
        except KeyboardInterrupt:
            interrupted = True
    reason = getattr(client.stats, "client_saturated", None)
    return ParallelRun(
        stats=client.stats,
        workers=[
            WorkerOutcome(
                id=0, planned=len(plan), requests=0, exit="interrupted" if interrupted else "ok"
            )
        ],
        reasons=[str(reason)] if reason else [],
        client_errors=int(getattr(client.stats, "client_errors", 0) or 0),
        interrupted=interrupted,
        t0_unix=client.t0_unix,
    )


def check_config(config: ReplayConfig) -> None:
    """UsageError (or MissingExtraError) for a config that cannot run, before any work: the
    URL, endpoint and policy, the schedule options, and the tokenizer's optional package."""
    opts = config.client
    check_url(opts.url)
    if opts.endpoint not in ENDPOINT_PATHS:
        raise UsageError(
            f"expected one of {', '.join(ENDPOINT_PATHS)}, found {opts.endpoint!r}",
            param="endpoint",
        )
    if opts.policy not in ("send-late", "drop"):
        raise UsageError(f"expected send-late or drop, found {opts.policy!r}", param="policy")
    for name in ("timeout_s", "connect_timeout_s", "read_timeout_s"):
        value = getattr(opts, name)
        if value is not None and not 0 < value < math.inf:
            raise UsageError(f"must be a finite number of seconds > 0, found {value}", param=name)
    if not 0 <= opts.late_after_s < math.inf:
        raise UsageError(
            f"must be a finite number of seconds ≥ 0, found {opts.late_after_s}",
            param="late_after_s",
        )
    if opts.max_concurrency is not None and opts.max_concurrency < 1:
        raise UsageError(f"must be ≥ 1, found {opts.max_concurrency}", param="max_concurrency")
    for name in ("warmup", "drain"):
        value = getattr(config, name)
        if not 0 <= value <= 1:
            raise UsageError(f"must be a fraction between 0 and 1, found {value}", param=name)
    config.schedule.check()
    check_workers(config.workers)
    if config.ray is not None:
        check_address(config.ray, param="ray")
        require_ray()
    if config.tokenizer:
        require("tokenizers", "tokenizers", TOKENIZER_PURPOSE)


def fit_context(
    schedule: Schedule, info: dict[str, Any], model: str | None, config: ReplayConfig
) -> tuple[Schedule, ContextFit]:
    """The schedule against the context length the server reported (see
    `schedule.apply_context`), and the `ContextFit` that says so — handed to
    `config.on_context`, or warned about (`ContextWarning`) when some requests do not fit.
    ReplayError when skipping the oversized requests leaves nothing to send."""
    tokens, where = context_length(info, model)
    t = schedule.table
    need = (t["input_tokens"].cast(pl.Int64) + t["output_tokens"].cast(pl.Int64)).max()
    fitted, counts = apply_context(schedule, tokens)
    fit = ContextFit(
        context_tokens=tokens, reported_by=where, action=config.schedule.fit_context,
        scheduled=schedule.n, longest=int(need) if isinstance(need, int) else 0, **counts,
    )  # fmt: skip
    if config.on_context is not None:
        config.on_context(fit)
    else:
        text = fit.warning()
        if text:
            warnings.warn(text, ContextWarning, stacklevel=3)
    if fitted.n == 0:
        raise ReplayError(
            f"all {schedule.n} scheduled requests need more than the server's {tokens}-token "
            "context and were left out (fit_context skip); clip them instead or serve a "
            "larger context"
        )
    return fitted, fit


def _check_out(run_dir: Path, overwrite: bool) -> None:
    """Refuse an `out` that is a file, or already holds a run unless `overwrite` — before work."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"{run_dir} is a file; a run is written to a folder", param="out")
    if (run_dir / "records").is_dir() and any((run_dir / "records").iterdir()) and not overwrite:
        raise UsageError(
            f"{run_dir} already holds a run's records; choose an empty folder or allow "
            "replacing it (overwrite)",
            param="out",
        )


def _prepare_out(run_dir: Path, overwrite: bool) -> None:
    """Create the run folder (removing a previous run's files when `overwrite`), once the run is
    sure to start: a run refused before that leaves no folder behind."""
    if overwrite and (run_dir / "records").is_dir():
        shutil.rmtree(run_dir / "records")
        for name in ("run.json", "summary.json", "report.html"):
            (run_dir / name).unlink(missing_ok=True)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the run folder {run_dir}: {exc.strerror or exc}", param="out"
        ) from None


def worker_counts(records: pl.DataFrame) -> dict[int, int]:
    """Records per worker_id (all of a single-process run's are worker 0's)."""
    if "worker_id" not in records.columns:
        return {0: records.height}
    counts = records.group_by(pl.col("worker_id").fill_null(0)).len()
    return {int(k): int(n) for k, n in counts.iter_rows()}


def finish(
    run_dir: Path,
    config: ReplayConfig,
    *,
    scheduled: int,
    interrupted: bool,
    client: LiveStats | None = None,
    context: ContextFit | None = None,
    workers: list[WorkerOutcome] | None = None,
    client_reasons: list[str] | None = None,
    client_errors: int = 0,
) -> RunSummary:
    """Compute summary.json (and report.html) from the records on disk.

    `workers`: how each client process ended (their `requests` are counted here, from the
    records' worker_id); `client_reasons` / `client_errors`: the saturation reasons and own
    failures the client processes reported (see `metrics.client_saturation`)."""
    records = read_records(run_dir)
    summary = summarize(
        records, scheduled=scheduled, warmup=config.warmup, drain=config.drain,
        client_reasons=client_reasons or (), client_errors=client_errors,
    )  # fmt: skip
    summary.interrupted = interrupted
    if context is not None:
        summary.context = dataclasses.replace(context, **context_outcome(records))
    if workers is not None:
        kept = worker_counts(records)
        summary.workers = [dataclasses.replace(w, requests=kept.get(w.id, 0)) for w in workers]
    if client is not None:
        several = workers is not None and len(workers) > 1
        summary.client = {
            "connections_opened": client.connections,
            # one process counts its own peak; the peak over several is in the records
            "peak_in_flight": summary.peak_in_flight if several else client.peak_in_flight,
        }
    if config.slo:
        summary.goodput = goodput(per_request(records), config.slo, summary.duration_s)
    if config.vllm_keys:
        summary.vllm_bench_serve = vllm_keys(summary)
    write_json(run_dir / "summary.json", summary.to_dict())
    if config.report and records.height:
        run_report(run_dir, records, summary)
    return summary


class _progress:
    """Progress bar: sent / done / in flight / errors / current lag, refreshed by the client."""

    def __init__(self, enabled: bool, plan: Plan):
        self.enabled = enabled
        self.total = len(plan)

    def __enter__(self):
        if not self.enabled:
            return None
        self._bar = progress_bar()
        self._bar.__enter__()
        self._task = self._bar.add_task("replay", total=self.total)
        self._last = time.monotonic()
        return self.tick

    def tick(self, s: LiveStats) -> None:
        self._bar.update(
            self._task,
            completed=s.done,
            description=(
                f"replay sent {s.sent} done {s.done} in-flight {s.in_flight} "
                f"errors {s.errors} lag {s.last_lag_s * 1000:.1f} ms"
            ),
        )

    def __exit__(self, *exc):
        if self.enabled:
            self._bar.__exit__(*exc)
        return False
