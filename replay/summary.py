"""The typed run summary: what `summary.json` holds, as dataclasses (docs/design.md §3).

`metrics.summarize` builds a `RunSummary` from the records; ``to_dict()`` is exactly the JSON
written to ``summary.json`` and `RunSummary.from_dict` reads one back (a run on disk, a card).
Times are seconds, rates per second, token counts tokens.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import polars as pl

from burstlab.errors import InputError
from burstlab.replay.goodput import Goodput
from burstlab.results import Result, Summary

#: Statistics of a distribution, in the order they are shown.
STATS = ("count", "mean", "std", "min", "p50", "p90", "p95", "p99", "p99_9", "max")


@dataclass(frozen=True)
class Distribution:
    """count, mean, std, min, percentiles and max of one metric (seconds); None when empty."""

    count: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p99_9: float | None = None
    max: float | None = None

    def __getitem__(self, key: str) -> Any:  # summary["full"]["e2e_s"]["p99"] keeps working
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Distribution:
        return cls(**{k: data.get(k) for k in STATS})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Counts:
    """How many requests the schedule held and what became of each. `failed` and
    `errors_by_kind` are the server's faults: a request the client itself failed (error_kind
    ``client``) is in neither, but in `ClientSaturation.client_errors`."""

    scheduled: int
    recorded: int
    not_sent: int
    issued: int
    completed: int
    failed: int
    dropped: int
    late: int
    resent: int
    errors_by_kind: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass(frozen=True)
class TokenAgreement:
    """Client vs server token counts: how often they disagree (prompt and output)."""

    prompt_mismatch_rate: float | None
    prompt_compared: int
    output_mismatch_rate: float | None
    output_compared: int
    output_target_miss_rate: float | None
    server_usage_missing: int

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass(frozen=True)
class LagOverTime:
    """Schedule lag p50 / p99 / max per bin of intended time (`bin_s` seconds wide)."""

    bin_s: float
    t: list[float]
    p50: list[float | None]
    p99: list[float | None]
    max: list[float | None]
    n: list[int]

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass(frozen=True)
class Steady:
    """The steady state: requests intended inside the schedule span less its first
    `warmup_fraction` and last `drain_fraction`, with their latency distributions."""

    window_s: list[float]
    warmup_fraction: float
    drain_fraction: float
    completed: int
    request_throughput_rps: float | None
    output_throughput_tps: float | None
    schedule_lag_s: Distribution
    latency: dict[str, Distribution]

    def __getitem__(self, key: str) -> Any:
        return self.latency[key] if key in self.latency else getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        head = {k: v for k, v in asdict(self).items() if k != "latency"}
        return {**head, **{k: d.to_dict() for k, d in self.latency.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Steady:
        fixed = {"window_s", "warmup_fraction", "drain_fraction", "completed",
                 "request_throughput_rps", "output_throughput_tps", "schedule_lag_s"}  # fmt: skip
        return cls(
            window_s=list(data["window_s"]),
            warmup_fraction=data["warmup_fraction"],
            drain_fraction=data["drain_fraction"],
            completed=data["completed"],
            request_throughput_rps=data["request_throughput_rps"],
            output_throughput_tps=data["output_throughput_tps"],
            schedule_lag_s=Distribution.from_dict(data["schedule_lag_s"]),
            latency={k: Distribution.from_dict(v) for k, v in data.items() if k not in fixed},
        )


#: ContextFit fields that are outcomes of the run (its records), not its plan.
OUTCOME_PREFIXES = ("oversized_", "fitting_")


@dataclass(frozen=True)
class ContextFit:
    """The schedule against the context length the server reported (prompt + output tokens one
    request may fill; llama.cpp: per slot), and how oversized and fitting requests fared.

    `oversized` requests of the `scheduled` ones needed more than `context_tokens` (up to
    `longest`); by `action` they were sent as they are (``send``), left out (``skip``:
    `skipped`) or clipped to fit (``clip``: `clipped`). The ``*_recorded`` / ``*_failed`` /
    ``*_short`` counts split the records by their `oversized` flag (as sent): failed = an error
    (not dropped), short = completed with fewer output tokens than asked (llama.cpp stops at
    its context). `context_tokens` is None when the server did not report one.
    """

    context_tokens: int | None
    reported_by: str | None
    action: str
    scheduled: int
    oversized: int
    longest: int
    skipped: int = 0
    clipped: int = 0
    oversized_recorded: int = 0
    oversized_failed: int = 0
    oversized_short: int = 0
    fitting_recorded: int = 0
    fitting_failed: int = 0
    fitting_short: int = 0

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def plan_dict(self) -> dict[str, Any]:
        """What is known before the run (for run.json): the context and the schedule against
        it, without the outcome counts."""
        return {k: v for k, v in asdict(self).items() if not k.startswith(OUTCOME_PREFIXES)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextFit:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def warning(self, option: Callable[[str], str] = str) -> str | None:
        """One line on the requests that do not fit (None when all fit or nothing is known);
        `option` turns a parameter name into how the reader names it (a CLI flag)."""
        if self.context_tokens is None:
            if self.action == "send":
                return None
            return (
                f"the server did not report its context length, so {option('fit_context')} "
                f"{self.action} cannot tell which requests do not fit; every request is sent"
            )
        if not self.oversized:
            return None
        head = (
            f"{self.oversized:,} of {self.scheduled:,} scheduled requests need more than the "
            f"server's {self.context_tokens:,}-token context (prompt + output tokens, up to "
            f"{self.longest:,})"
        )
        if self.action == "skip":
            return f"{head}: left out ({option('fit_context')} skip)"
        if self.action == "clip":
            return f"{head}: clipped to fit ({option('fit_context')} clip)"
        return (
            f"{head}: sent as asked, they will fail or stop short — clip prompts with "
            f"{option('max_input_tokens')}, leave them out or clip them with "
            f"{option('fit_context')} skip|clip, or serve a larger context"
        )

    def note(self) -> str | None:
        """How the oversized requests fared next to the fitting ones (one line), or None."""
        if not self.oversized_recorded:
            return None
        return (
            f"{self.oversized_recorded:,} requests did not fit the {self.context_tokens:,}-token "
            f"context: {self.oversized_failed:,} failed, {self.oversized_short:,} stopped short; "
            f"of {self.fitting_recorded:,} that fit, {self.fitting_failed:,} failed"
        )


#: A healthy client sends within a fraction of a millisecond of schedule (docs/replay.md,
#: Measured: median lag 0.01-0.03 ms up to 3,000 req/s; the design target is a p99 ≤ 2 ms,
#: docs/design.md §5). The bound on the p99 of the client's own lag is five times that target,
#: fixed before any saturated run was looked at: above it the client, not the server, is
#: what the schedule-anchored numbers measure.
CLIENT_LAG_BOUND_S = 0.010
#: The p99 lag rule needs this many measured requests; below it the p99 is the maximum, which
#: one preemption of the client's core decides.
CLIENT_LAG_MIN_REQUESTS = 100


@dataclass(frozen=True)
class ClientSaturation:
    """Whether the load generator itself fell behind (then latencies include its own delay).

    `saturated` when a client process reported a reason (`reasons`), any request failed inside
    the client (`client_errors`: error_kind ``client``), or the p99 of the client's own schedule
    lag (`lag_p99_s`: sent − intended less the max-concurrency queue, and for requests dropped
    behind schedule their dispatch − intended; over `lag_measured` requests, at least
    CLIENT_LAG_MIN_REQUESTS) exceeds `lag_bound_s`. `delivered_ratio` is the send rate over
    the offered rate (None when either is undefined). Seconds.
    """

    saturated: bool
    reasons: list[str]
    client_errors: int
    lag_bound_s: float
    lag_p99_s: float | None
    lag_max_s: float | None
    lag_measured: int
    delivered_ratio: float | None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientSaturation:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def warning(self) -> str | None:
        """One line saying the client saturated and why (None when it did not)."""
        if not self.saturated:
            return None
        return (
            f"the client saturated ({'; '.join(self.reasons)}): latencies include its own "
            "delay; send the load from more client processes or machines, or offer less"
        )


@dataclass(frozen=True)
class WorkerOutcome:
    """One client process of a run: its id (the records' `worker_id`), the requests it was
    given (`planned`) and whose records it kept (`requests`), and how it ended (`exit`: ``ok``,
    ``interrupted``, ``killed by signal 9 (SIGKILL)``, ``exited with status 1: …``)."""

    id: int
    planned: int
    requests: int
    exit: str

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    @property
    def lost(self) -> bool:
        """The process died or failed (its finished requests are still in the records)."""
        return self.exit not in ("ok", "interrupted")


#: A request whose intended sharing did not hit: the server served less than this fraction of
#: the prompt tokens the trace meant to be cached. Fixed before any run was looked at: a
#: working prefix cache serves all of an intended prefix but the token llama.cpp always
#: re-evaluates, or vLLM's partial last KV block (< 16 tokens of a 512-token Mooncake block:
#: ≥ 97 %), while a miss (evicted, another llama.cpp slot, a prefix still being prefilled
#: by a concurrent request) serves none of it, or only the system-prompt blocks of a longer
#: intended prefix. Half sits far from both, so block granularity never counts as a miss and
#: a partial hit of under half counts as one.
CACHE_MISS_FRACTION = 0.5


@dataclass(frozen=True)
class CacheTruth:
    """Prefix-cache hits the trace intended (hash_ids) against those the server reported,
    over completed requests. Token-weighted rates: Σ cached / Σ prompt tokens (the server's
    prompt count, else the trace's), each over the requests that have that number.

    `intended_requests` completed requests had intended cached tokens > 0; of those,
    `missed_requests` got fewer than `miss_fraction` of them from the server (among those the
    server reported on: `missed_share` = missed / such requests). A rate is None when no
    request has its number (no hash_ids; a server that does not report cached tokens).
    """

    requests: int
    intended_reported: int  # completed requests with intended cached tokens (hash_ids)
    observed_reported: int  # completed requests whose server reported cached tokens
    intended_cached_tokens: int
    observed_cached_tokens: int
    intended_hit_rate: float | None
    observed_hit_rate: float | None
    intended_requests: int
    missed_requests: int
    missed_share: float | None
    miss_fraction: float = CACHE_MISS_FRACTION

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CacheTruth:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def table(self) -> pl.DataFrame:
        """One row: intended vs observed hit rates (%) and the missed share (%)."""

        def pct(x: float | None) -> float | None:
            return None if x is None else 100.0 * x

        return pl.DataFrame(
            [
                {
                    "intended hit %": pct(self.intended_hit_rate),
                    "observed hit %": pct(self.observed_hit_rate),
                    "intended cached tok": self.intended_cached_tokens,
                    "observed cached tok": self.observed_cached_tokens,
                    "requests meant to hit": self.intended_requests,
                    "missed %": pct(self.missed_share),
                }
            ],
            schema={
                "intended hit %": pl.Float64,
                "observed hit %": pl.Float64,
                "intended cached tok": pl.Int64,
                "observed cached tok": pl.Int64,
                "requests meant to hit": pl.Int64,
                "missed %": pl.Float64,
            },
        )


#: Latency metrics shown in a summary table, with their labels.
SHOWN = (
    ("ttft_s", "TTFT"),
    ("ttft_sched_s", "TTFT sched"),
    ("tpot_s", "TPOT"),
    ("itl_s", "ITL"),
    ("e2e_s", "E2E"),
    ("e2e_sched_s", "E2E sched"),
)


@dataclass
class RunSummary(Result):
    """Everything `summary.json` says about one run (see the module docstring)."""

    counts: Counts
    duration_s: float
    offered_rate_rps: float | None
    send_rate_rps: float | None
    request_throughput_rps: float | None
    output_throughput_tps: float | None
    input_throughput_tps: float | None
    total_input_tokens: int
    total_output_tokens: int
    peak_in_flight: int
    schedule_lag_s: Distribution
    schedule_lag_over_time: LagOverTime
    queue_s: Distribution
    tokens: TokenAgreement
    full: dict[str, Distribution]
    steady: Steady
    interrupted: bool = False
    client: dict[str, int] | None = None
    goodput: Goodput | None = None
    vllm_bench_serve: dict[str, Any] | None = None
    context: ContextFit | None = None
    client_saturated: bool = False
    client_saturation: ClientSaturation | None = None
    workers: list[WorkerOutcome] | None = None
    cache: CacheTruth | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def lost_workers(self) -> list[WorkerOutcome]:
        """The client processes that died or failed during the run (empty when none did)."""
        return [w for w in self.workers or () if w.lost]

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "counts": asdict(self.counts),
            "duration_s": self.duration_s,
            "offered_rate_rps": self.offered_rate_rps,
            "send_rate_rps": self.send_rate_rps,
            "request_throughput_rps": self.request_throughput_rps,
            "output_throughput_tps": self.output_throughput_tps,
            "input_throughput_tps": self.input_throughput_tps,
            "total_input_tokens": self.total_input_tokens,
            "total_output_tokens": self.total_output_tokens,
            "peak_in_flight": self.peak_in_flight,
            "schedule_lag_s": self.schedule_lag_s.to_dict(),
            "schedule_lag_over_time": asdict(self.schedule_lag_over_time),
            "queue_s": self.queue_s.to_dict(),
            "tokens": asdict(self.tokens),
            "full": {k: d.to_dict() for k, d in self.full.items()},
            "steady": self.steady.to_dict(),
            "interrupted": self.interrupted,
        }
        if self.client is not None:
            out["client"] = dict(self.client)
        if self.goodput is not None:
            out["goodput"] = self.goodput.to_dict()
        if self.vllm_bench_serve is not None:
            out["vllm_bench_serve"] = dict(self.vllm_bench_serve)
        if self.context is not None:
            out["context"] = self.context.to_dict()
        out["client_saturated"] = self.client_saturated
        if self.client_saturation is not None:
            out["client_saturation"] = self.client_saturation.to_dict()
        if self.workers is not None:
            out["workers"] = [asdict(w) for w in self.workers]
        if self.cache is not None:
            out["cache"] = self.cache.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        """Read a `summary.json` document back."""
        return cls(
            counts=Counts(**data["counts"]),
            duration_s=data["duration_s"],
            offered_rate_rps=data.get("offered_rate_rps"),
            send_rate_rps=data.get("send_rate_rps"),
            request_throughput_rps=data.get("request_throughput_rps"),
            output_throughput_tps=data.get("output_throughput_tps"),
            input_throughput_tps=data.get("input_throughput_tps"),
            total_input_tokens=data["total_input_tokens"],
            total_output_tokens=data["total_output_tokens"],
            peak_in_flight=data["peak_in_flight"],
            schedule_lag_s=Distribution.from_dict(data["schedule_lag_s"]),
            schedule_lag_over_time=LagOverTime(**data["schedule_lag_over_time"]),
            queue_s=Distribution.from_dict(data["queue_s"]),
            tokens=TokenAgreement(**data["tokens"]),
            full={k: Distribution.from_dict(v) for k, v in data["full"].items()},
            steady=Steady.from_dict(data["steady"]),
            interrupted=bool(data.get("interrupted", False)),
            client=data.get("client"),
            goodput=Goodput.from_dict(data["goodput"]) if data.get("goodput") else None,
            vllm_bench_serve=data.get("vllm_bench_serve"),
            context=ContextFit.from_dict(data["context"]) if data.get("context") else None,
            client_saturated=data.get("client_saturated", False),
            client_saturation=(
                ClientSaturation.from_dict(data["client_saturation"])
                if data.get("client_saturation")
                else None
            ),
            workers=(
                [WorkerOutcome(**w) for w in data["workers"]]
                if isinstance(data.get("workers"), list)
                else data.get("workers")
            ),
            cache=CacheTruth.from_dict(data["cache"]) if data.get("cache") else None,
        )

    def latency_table(self, steady: bool = False) -> pl.DataFrame:
        """One row per latency metric (and schedule lag), statistics in seconds."""
        block = self.steady.latency if steady else self.full
        rows = [{"metric": key, **block[key].to_dict()} for key, _ in SHOWN if key in block]
        rows.append({"metric": "schedule_lag_s", **self.schedule_lag_s.to_dict()})
        schema = {"metric": pl.String, "count": pl.Int64, **dict.fromkeys(STATS[1:], pl.Float64)}
        return pl.DataFrame(rows, schema=schema)

    def table(self) -> pl.DataFrame:
        return self.latency_table()

    def summary(self) -> Summary:
        c = self.counts
        shown = ("mean", "p50", "p90", "p99", "max")
        labels = {**dict(SHOWN), "schedule_lag_s": "schedule lag"}
        latency = self.latency_table().select(
            pl.col("metric").replace_strict(labels),
            *[(pl.col(k) * 1000).alias(f"{k} ms") for k in shown],
        )
        counts = pl.DataFrame([{k: v for k, v in asdict(c).items() if k != "errors_by_kind"}])
        rates = pl.DataFrame(
            [
                {
                    "offered req/s": self.offered_rate_rps,
                    "completed req/s": self.request_throughput_rps,
                    "output tok/s": self.output_throughput_tps,
                    "duration s": self.duration_s,
                    "peak in flight": self.peak_in_flight,
                }
            ]
        )
        s = Summary(f"replay: {c.completed:,} of {c.scheduled:,} requests completed")
        s.add("latency", latency).add("requests", counts).add("throughput", rates)
        if self.goodput is not None:
            s.add(f"goodput ({self.goodput.slo.anchor}-anchored)", self.goodput.table())
        if self.cache is not None:
            s.add("prefix cache (intended by hash_ids vs served)", self.cache.table())
        if c.errors_by_kind:
            s.notes.append(f"errors by kind: {c.errors_by_kind}")
        if self.context is not None:
            line = self.context.note() or (
                self.context.warning() if self.context.action != "send" else None
            )
            if line:
                s.notes.append(line)
        if self.interrupted:
            s.notes.append("interrupted: the records of every finished request were kept")
        for w in self.lost_workers():
            s.notes.append(
                f"client process {w.id} {w.exit}: {w.requests:,} of its {w.planned:,} requests "
                "finished and were kept"
            )
        if self.workers is not None and len(self.workers) > 1:
            s.notes.append(f"sent by {len(self.workers)} client processes")
        if self.client_saturation is not None:
            line = self.client_saturation.warning()
            if line:
                s.notes.insert(0, line)
        return s


def read_summary(run_dir: str | Path) -> RunSummary:
    """The `RunSummary` of a run folder (its ``summary.json``); InputError when it has none."""
    path = Path(run_dir) / "summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, f"cannot read a run summary ({exc.strerror})") from None
    except ValueError as exc:
        raise InputError(path, f"not a JSON document ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "not a burstlab run summary", expected="a JSON object")
    try:
        summary = RunSummary.from_dict(data)
    except KeyError as exc:
        raise InputError(path, "not a burstlab run summary", expected=f"the key {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise InputError(path, f"not a burstlab run summary ({exc})") from None
    problem = type_problem(summary, RunSummary)
    if problem:
        raise InputError(path, f"not a burstlab run summary: {problem}")
    return summary


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def type_problem(value: Any, hint: Any, where: str = "") -> str | None:
    """Where `value` (a summary dataclass, as read from JSON) differs from its declared types,
    in words, or None: numbers are finite int/float (never bool), lists and string-keyed dicts
    hold what they declare, nested dataclasses are checked field by field."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        problems = [type_problem(value, h, where) for h in options if h is not type(None)]
        return None if any(p is None for p in problems) else problems[0]
    if origin is typing.Literal:
        ok = value in typing.get_args(hint)
        return (
            None
            if ok
            else f"{where or 'the document'} is {_show(value)}; expected one of {typing.get_args(hint)}"
        )
    if origin is list:
        if not isinstance(value, list):
            return f"{where} is {type(value).__name__}; expected a list"
        (item,) = typing.get_args(hint)
        return next(
            (p for i, v in enumerate(value) if (p := type_problem(v, item, f"{where}[{i}]"))), None
        )
    if origin is dict:
        if not isinstance(value, dict):
            return f"{where} is {type(value).__name__}; expected an object"
        _, item = typing.get_args(hint)
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{where} has a key {_show(k)} that is not text"
            problem = type_problem(v, item, f"{where}.{k}" if where else k)
            if problem:
                return problem
        return None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            return f"{where} is {type(value).__name__}; expected an object"
        hints = typing.get_type_hints(hint)
        for f in fields(hint):
            problem = type_problem(
                getattr(value, f.name), hints[f.name], f"{where}.{f.name}" if where else f.name
            )
            if problem:
                return problem
        return None
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else f"{where} is {_show(value)}; expected a finite number"
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"{where} is {_show(value)}; expected a whole number"
    if hint in (bool, str):
        return (
            None
            if isinstance(value, hint)
            else f"{where} is {_show(value)}; expected {hint.__name__}"
        )
    return None
