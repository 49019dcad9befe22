"""guidellm ``benchmarks.json`` (its `GenerativeBenchmarksReport`), both ways.

The report is ``{"metadata": …, "config": …, "benchmarks": [GenerativeBenchmark, …]}``; each
benchmark has ``requests`` grouped by status (``successful``, ``incomplete``, ``errored``) as
`GenerativeRequestStats` objects and ``metrics`` (`GenerativeMetrics`: per metric a
`StatusDistributionSummary` with ``successful`` / ``incomplete`` / ``errored`` / ``total``
distributions of ``mean``, ``median``, ``std_dev``, ``min``, ``max``, ``count``, ``total_sum``,
``percentiles`` {``p001`` … ``p999``}). A request's times live in ``info.timings``, Unix
seconds: ``targeted_start`` (the schedule point), ``request_start``, ``first_token_iteration``,
``last_token_iteration``, ``request_end``, with ``token_iterations`` (streamed chunks);
``input_metrics.text_tokens`` and ``output_metrics.text_tokens`` are the token counts.

Mapping (burstlab → guidellm), per request: targeted_start = intended_s, request_start =
sent_s, first_token_iteration = first_token_s, last_token_iteration = the last chunk time,
request_end = end_s (all + the run's wall-clock start), token_iterations = text chunks;
derived fields as guidellm computes them: ``request_latency`` (s) = end − start,
``time_to_first_token_ms`` (ms), ``time_per_output_token_ms`` (ms, (last − first) / (output −
1) as guidellm defines it), ``request_scheduled_latency`` (s, burstlab E2E_sched),
``request_dispatch_delay`` (s, burstlab schedule lag). Metrics: request_latency (s),
time_to_first_token_ms, time_per_output_token_ms, inter_token_latency_ms (ms),
request_scheduled_latency, request_dispatch_delay (s), prompt_token_count,
output_token_count (tokens), request_totals.

Each exported request validates as guidellm 0.8's own `GenerativeRequestStats`; the envelope
(config, scheduler metrics, the other `GenerativeMetrics` fields) is a subset of what guidellm's
`GenerativeBenchmarksReport` requires, so guidellm's own report loader does not take the file
(docs/interop.md lists what is missing).

guidellm keeps no per-chunk times: an import has the first and last token times and the chunk
count, so TTFT, E2E and TPOT survive exactly, but the ITL/ICL distribution does not (chunk
times are spread evenly between the first and the last).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl

from burstlab.atomic import staged_dir, write_json
from burstlab.errors import InputError
from burstlab.replay.peers.common import BurstlabRun, Imported, clean, records_from, stats, utc

REPORT_FILE = "benchmarks.json"
_PCT = {"p001": 0.1, "p01": 1, "p05": 5, "p10": 10, "p25": 25, "p50": 50, "p75": 75,
        "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}  # fmt: skip
NO_COUNTERPART = [
    "per-chunk arrival times (guidellm keeps first/last token and the chunk count only)",
    "error kinds beyond the message; dropped requests are written as errored with "
    "info.error 'dropped: …' and no request_start",
    "client vs server token count agreement, first byte times, SSE comments, resends",
]


def _dist(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    s = stats(values, tuple(_PCT.values()))
    std = s["std"] or 0.0
    return {
        "mean": s["mean"], "median": s["p50"], "mode": s["p50"], "variance": std * std,
        "std_dev": std, "min": s["min"], "max": s["max"], "count": len(values),
        "total_sum": float(sum(values)),
        "percentiles": {k: s[f"p{p:g}"] for k, p in _PCT.items()},
    }  # fmt: skip


def _status_dist(ok: list[float], bad: list[float]) -> dict[str, Any]:
    return {"successful": _dist(ok), "incomplete": None, "errored": _dist(bad),
            "total": _dist(ok + bad)}  # fmt: skip


def request_stats(run: BurstlabRun, r: dict[str, Any]) -> dict[str, Any]:
    """One `GenerativeRequestStats` object for one burstlab record."""
    t0 = run.t0_unix

    def unix(s: float | None) -> float | None:
        return None if s is None else t0 + s

    chunks = r["chunk_times_s"] or []
    ok = bool(r["ok"])
    osl = next((r[k] for k in ("output_tokens_server", "output_tokens_client") if r[k] is not None), None)  # fmt: skip
    isl = next((r[k] for k in ("prompt_tokens_server", "prompt_tokens_client", "input_tokens") if r[k] is not None), None)  # fmt: skip
    sent, first, end = r["sent_s"], r["first_token_s"], r["end_s"]
    last = chunks[-1] if chunks else None
    timings = {
        "targeted_start": unix(r["intended_s"]),
        "resolve_start": unix(sent),
        "request_start": unix(sent),
        "first_request_iteration": unix(r["first_byte_s"]),
        "first_token_iteration": unix(first),
        "first_output_token_iteration": unix(first),
        "last_token_iteration": unix(last),
        "last_request_iteration": unix(last),
        "request_iterations": len(chunks),
        "token_iterations": len(chunks),
        "request_end": unix(end),
        "resolve_end": unix(end if end is not None else r["intended_s"]),
    }
    error = None
    if r["dropped"]:
        error = "dropped: never sent (behind schedule under --policy drop)"
    elif not ok:
        error = f"{r['error_kind'] or 'error'}: {r['error'] or ''}".rstrip(": ")
    out: dict[str, Any] = {
        "type_": "generative_request_stats",
        "request_id": f"burstlab-{r['req_id']}",
        "response_id": None,
        "request_args": None,
        "output": None,
        "info": {
            "request_id": f"burstlab-{r['req_id']}",
            "conversation_id": r["session_id"],
            "turn_index": r["turn"] or 0,
            "status": "completed" if ok else "errored",
            "scheduler_node_id": -1,
            "scheduler_process_id": int(r["worker_id"] or 0),
            "scheduler_start_time": t0,
            "timings": timings,
            "error": error,
        },
        "input_metrics": {"text_tokens": isl},
        "output_metrics": {"text_tokens": osl if ok else None},
    }
    ok_times = ok and sent is not None and end is not None
    out["request_start_time"] = timings["request_start"]
    out["request_end_time"] = timings["request_end"] or timings["resolve_end"]
    out["request_latency"] = (
        end - sent if ok_times and end is not None and sent is not None else None
    )
    out["request_dispatch_delay"] = sent - r["intended_s"] if sent is not None else None
    out["request_scheduled_latency"] = end - r["intended_s"] if end is not None else None
    out["prompt_tokens"] = isl
    out["output_tokens"] = osl if ok else None
    out["time_to_first_token_ms"] = 1000 * (first - sent) if ok and first is not None else None
    tpot = None
    if ok and first is not None and last is not None and osl is not None and osl > 1:
        tpot = 1000 * (last - first) / (osl - 1)
    out["time_per_output_token_ms"] = tpot
    out["inter_token_latency_ms"] = tpot
    return {k: clean(v) for k, v in out.items()}


def report(run: BurstlabRun) -> dict[str, Any]:
    """The `benchmarks.json` document of a burstlab run: one benchmark holding every request."""
    rows = run.records.sort("req_id").to_dicts()
    stats_ = [request_stats(run, r) for r in rows]
    good = [s for s in stats_ if s["info"]["status"] == "completed"]
    bad = [s for s in stats_ if s["info"]["status"] != "completed"]

    def col(group: list[dict[str, Any]], key: str) -> list[float]:
        return [float(s[key]) for s in group if s.get(key) is not None]

    metrics = {
        "request_totals": {
            "successful": len(good),
            "incomplete": 0,
            "errored": len(bad),
            "total": len(stats_),
        },
    }
    for key in ("request_latency", "request_scheduled_latency", "request_dispatch_delay",
                "time_to_first_token_ms", "time_per_output_token_ms", "inter_token_latency_ms",
                "prompt_tokens", "output_tokens"):  # fmt: skip
        name = {"prompt_tokens": "prompt_token_count", "output_tokens": "output_token_count"}
        metrics[name.get(key, key)] = _status_dist(col(good, key), col(bad, key))
    ends = [s["request_end_time"] for s in stats_ if s["request_end_time"] is not None]
    starts = [s["request_start_time"] for s in stats_ if s["request_start_time"] is not None]
    start = min(starts) if starts else run.t0_unix
    end = max(ends) if ends else start
    bench = {
        "type_": "generative_benchmark",
        "id_": f"burstlab:{run.path.name}",
        "run_id": f"burstlab:{run.path.name}",
        "run_index": 0,
        "config": {
            "strategy": {"type_": "trace"},
            "profile": {"type_": "replay"},
            "requests": {"source": run.run.get("source")},
        },
        "scheduler_state": {
            "start_time": start,
            "end_time": end,
            "created_requests": len(stats_),
            "processed_requests": len(stats_),
            "successful_requests": len(good),
            "errored_requests": len(bad),
        },
        "scheduler_metrics": {"start_time": start, "end_time": end},
        "metrics": metrics,
        "requests": {"successful": good, "incomplete": [], "errored": bad, "total": None},
        "warnings": [],
        "start_time": start,
        "end_time": end,
        "duration": end - start,
    }
    return {
        "metadata": {
            "version": 1,
            "guidellm_version": None,
            "burstlab_export": True,
            "created": utc(run.t0_unix),
        },
        "config": {
            "target": (run.run.get("target") or {}).get("url"),
            "model": run.run.get("model"),
            "profile": "replay",
            "data": [run.run.get("source")],
        },
        "benchmarks": [bench],
        "conclusions": [],
    }


def export(run: BurstlabRun, out: str | Path, *, overwrite: bool = False) -> list[str]:
    """Write `out/benchmarks.json` atomically."""
    doc = report(run)
    with staged_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / REPORT_FILE, doc, indent=None)
    return [REPORT_FILE]


def _t(timings: dict[str, Any], key: str, path: Path, where: str) -> float | None:
    v = timings.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InputError(path, "not Unix seconds", field=f"{where}.info.timings.{key}",
                         found=repr(v))  # fmt: skip
    return float(v)


def _count(obj: Any, path: Path, where: str) -> int | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise InputError(path, "not usage metrics", field=where, expected="an object")
    v = obj.get("text_tokens", obj.get("total_tokens"))
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(path, "not a token count", field=f"{where}.text_tokens", found=repr(v))
    return v


def read(doc: dict[str, Any], path: Path) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Records and run.json fields from a guidellm report: every benchmark's requests, in
    order of request start (run clock 0 = the earliest targeted or actual start)."""
    benches = doc.get("benchmarks")
    if not isinstance(benches, list) or not benches:
        raise InputError(path, "not a guidellm report", field="benchmarks",
                         expected="a non-empty list")  # fmt: skip
    items: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = []
    for b, bench in enumerate(benches):
        reqs = bench.get("requests") if isinstance(bench, dict) else None
        if not isinstance(reqs, dict):
            raise InputError(path, "not a guidellm benchmark", field=f"benchmarks[{b}].requests",
                             expected="an object of status lists")  # fmt: skip
        for status in ("successful", "incomplete", "errored"):
            group = reqs.get(status) or []
            if not isinstance(group, list):
                raise InputError(path, "not a list", field=f"benchmarks[{b}].requests.{status}")
            for i, s in enumerate(group):
                where = f"benchmarks[{b}].requests.{status}[{i}]"
                info = s.get("info") if isinstance(s, dict) else None
                timings = info.get("timings") if isinstance(info, dict) else None
                if not isinstance(timings, dict):
                    raise InputError(path, "not a guidellm request", field=f"{where}.info.timings",
                                     expected="an object")  # fmt: skip
                items.append((where, s, timings, status == "successful"))
    if not items:
        raise InputError(path, "the report holds no requests", field="benchmarks[].requests")
    firsts = []
    for where, _, timings, _ in items:
        for key in ("targeted_start", "request_start", "resolve_start", "resolve_end"):
            v = _t(timings, key, path, where)
            if v is not None:
                firsts.append(v)
                break
    if not firsts:
        raise InputError(path, "no request has a start time", field="info.timings.request_start")
    origin = min(firsts)

    def clock(v: float | None) -> float | None:
        return None if v is None else v - origin

    rows: list[tuple[float, Imported]] = []
    for where, s, timings, ok in items:
        targeted = _t(timings, "targeted_start", path, where)
        start = _t(timings, "request_start", path, where)
        first = _t(timings, "first_token_iteration", path, where)
        last = _t(timings, "last_token_iteration", path, where)
        end = _t(timings, "request_end", path, where)
        if end is None:
            end = _t(timings, "resolve_end", path, where)
        n_iter = timings.get("token_iterations") or 0
        if isinstance(n_iter, bool) or not isinstance(n_iter, int):
            raise InputError(path, "not a count", field=f"{where}.info.timings.token_iterations")
        isl = _count(s.get("input_metrics"), path, f"{where}.input_metrics")
        osl = _count(s.get("output_metrics"), path, f"{where}.output_metrics")
        err = s["info"].get("error")
        dropped = isinstance(err, str) and err.startswith("dropped")
        if ok and (start is None or first is None or end is None):
            raise InputError(path, "a successful request without its times",
                             field=f"{where}.info.timings",
                             expected="request_start, first_token_iteration, request_end")  # fmt: skip
        row = Imported(
            sent_s=None if dropped else clock(start),
            intended_s=clock(targeted) if targeted is not None else clock(start),
            ok=ok,
            first_byte_s=clock(_t(timings, "first_request_iteration", path, where)),
            end_s=None if dropped else clock(end),
            error=None if ok else (err or "errored"),
            error_kind="dropped" if dropped else None,
            status=200 if ok else None,
            dropped=dropped,
            input_tokens=isl,
            prompt_tokens_client=isl,
            output_tokens_server=osl if ok else None,
            session_id=s["info"].get("conversation_id"),
        )
        if ok and first is not None:
            row.first_token_s = clock(first)
            k = max(n_iter, 1)
            lo = first
            hi = last if last is not None and k > 1 else first
            step = (hi - lo) / (k - 1) if k > 1 else 0.0
            row.chunk_times_s = [lo - origin + j * step for j in range(k)]
            if k > 1:
                row.chunk_times_s[-1] = hi - origin
            row.output_tokens_client = k
        key = row.sent_s if row.sent_s is not None else (row.intended_s or 0.0)
        rows.append((key, row))
    rows.sort(key=lambda kr: kr[0])
    records = records_from([r for _, r in rows])
    cfg = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    run = {
        "source": f"guidellm:{path.name}",
        "model": cfg.get("model") if isinstance(cfg, dict) else None,
        "t0_unix": origin,
        "imported_from": {"tool": "guidellm", "file": str(path), "benchmarks": len(benches)},
    }
    return records, run
