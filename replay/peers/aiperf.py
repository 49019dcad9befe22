"""AIPerf run artifacts, both ways: ``profile_export.jsonl`` (one record per line) and
``profile_export_aiperf.json`` (the aggregate).

A record line (AIPerf's `MetricRecordInfo`) is ``{"metadata": {…}, "metrics": {tag: {"value":
v, "unit": u}}, "error": null | {"code", "type", "message"}}``. Metadata times are wall-clock
Unix nanoseconds (`time.time_ns()`): ``credit_issued_ns`` (the rate limiter's release — the
schedule point), ``request_start_ns``, ``request_ack_ns`` (response headers), ``request_end_ns``;
plus ``session_num``, ``x_request_id``, ``conversation_id``, ``turn_index``, ``worker_id``,
``record_processor_id``, ``benchmark_phase`` ("profiling"). Metric values are in display units:
latencies ms, lengths tokens.

Mapping (burstlab → AIPerf), per record: ``time_to_first_token`` = first_token_s − sent_s (ms);
``request_latency`` = end_s − sent_s (ms; AIPerf measures to the last content response, burstlab
to the end of the stream); ``inter_chunk_latency`` = chunk gaps (ms, a list);
``inter_token_latency`` = burstlab TPOT, (E2E − TTFT) / (output − 1) (ms: AIPerf's per-request
ITL is that quotient); ``output_sequence_length`` = output tokens (server, else client);
``input_sequence_length`` = prompt tokens (server, else client, else target);
``time_to_second_token`` = second chunk − first chunk (ms). Failed requests carry ``error``
(code = HTTP status, type = burstlab error kind, message = error text) and no latency metrics;
a request dropped behind schedule is an error of type ``dropped`` with ``was_cancelled`` true.
The aggregate has AIPerf's `JsonMetricResult` shape per metric (``unit``, ``avg``, ``p1`` …
``p99``, ``min``, ``max``, ``std``, ``count``) and the run totals.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from burstlab.atomic import staged_dir, write_json
from burstlab.errors import InputError
from burstlab.replay.metrics import summarize
from burstlab.replay.peers.common import (
    BurstlabRun,
    Imported,
    clean,
    gaps,
    records_from,
    stats,
    utc,
)

RECORDS_FILE = "profile_export.jsonl"
AGGREGATE_FILE = "profile_export_aiperf.json"
SCHEMA_VERSION = "1.4"
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
NO_COUNTERPART = [
    "schedule-anchored E2E / TTFT and schedule lag are not AIPerf metrics (credit_issued_ns "
    "keeps the intended time, so an importer can recompute them)",
    "dropped requests: written as errors of type 'dropped' with was_cancelled true",
    "ITL spread over multi-token chunks (AIPerf's inter_token_latency is per-request TPOT)",
    "client vs server token count agreement, SSE comments, resends",
]


def _ms(seconds: float | None) -> dict[str, Any] | None:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return None
    return {"value": seconds * 1000.0, "unit": "ms"}


def _tokens(n: int | None) -> dict[str, Any] | None:
    return None if n is None else {"value": int(n), "unit": "tokens"}


def _first(row: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        if row.get(key) is not None:
            return int(row[key])
    return None


def record_lines(run: BurstlabRun) -> list[dict[str, Any]]:
    """One AIPerf record dict per burstlab record (request order)."""
    lines = []
    for r in run.records.sort("req_id").to_dicts():
        sent, ok = r["sent_s"], bool(r["ok"])
        start = sent if sent is not None else r["intended_s"]
        end = r["end_s"] if r["end_s"] is not None else start
        meta: dict[str, Any] = {
            "session_num": int(r["req_id"]),
            "x_request_id": f"burstlab-{r['req_id']}",
            "x_correlation_id": r["session_id"],
            "conversation_id": r["session_id"],
            "turn_index": r["turn"],
            "credit_issued_ns": run.ns(r["intended_s"]),
            "request_start_ns": run.ns(start),
            "request_ack_ns": run.ns(r["first_byte_s"]),
            "request_end_ns": run.ns(end),
            "worker_id": f"worker_{r['worker_id'] or 0}",
            "record_processor_id": "burstlab",
            "benchmark_phase": "profiling",
            "was_cancelled": bool(r["dropped"]) or r["error_kind"] == "cancelled",
        }
        osl = _first(r, "output_tokens_server", "output_tokens_client")
        isl = _first(r, "prompt_tokens_server", "prompt_tokens_client", "input_tokens")
        metrics: dict[str, Any] = {}
        if isl is not None:
            metrics["input_sequence_length" if ok else "error_isl"] = _tokens(isl)
        error = None
        if ok and sent is not None:
            chunks = r["chunk_times_s"] or []
            ttft = r["first_token_s"] - sent if r["first_token_s"] is not None else None
            e2e = r["end_s"] - sent if r["end_s"] is not None else None
            metrics["time_to_first_token"] = _ms(ttft)
            metrics["request_latency"] = _ms(e2e)
            if len(chunks) > 1:
                metrics["time_to_second_token"] = _ms(chunks[1] - chunks[0])
                metrics["inter_chunk_latency"] = {
                    "value": [g * 1000.0 for g in gaps(chunks)],
                    "unit": "ms",
                }
            metrics["usage_prompt_tokens"] = _tokens(r["prompt_tokens_server"])
            metrics["usage_completion_tokens"] = _tokens(r["output_tokens_server"])
            if osl is not None:
                metrics["output_sequence_length"] = _tokens(osl)
                if osl > 1 and ttft is not None and e2e is not None:
                    metrics["inter_token_latency"] = _ms((e2e - ttft) / (osl - 1))
        else:
            kind = "dropped" if r["dropped"] else (r["error_kind"] or "error")
            error = {"code": r["status"], "type": kind, "message": r["error"] or kind}
        lines.append(
            {
                "metadata": meta,
                "metrics": {k: v for k, v in metrics.items() if v is not None},
                "error": error,
            }
        )
    return lines


def _result(values: list[float], unit: str) -> dict[str, Any] | None:
    if not values:
        return None
    s = stats(values, PERCENTILES)
    out: dict[str, Any] = {"unit": unit, "avg": s["mean"]}
    out.update({f"p{p}": s[f"p{p}"] for p in PERCENTILES})
    out.update({"min": s["min"], "max": s["max"], "std": s["std"], "count": len(values)})
    out["sum"] = sum(values)
    return out


def aggregate(run: BurstlabRun, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The `profile_export_aiperf.json` document (AIPerf's `JsonExportData` shape)."""

    def metric(tag: str) -> list[float]:
        out: list[float] = []
        for line in lines:
            m = line["metrics"].get(tag)
            if m is None:
                continue
            v = m["value"]
            out.extend(v if isinstance(v, list) else [v])
        return out

    summary = summarize(run.records, scheduled=run.records.height)
    good = [ln for ln in lines if ln["error"] is None]
    duration = summary.duration_s
    osl = metric("output_sequence_length")
    isl = metric("input_sequence_length")
    starts = [ln["metadata"]["request_start_ns"] for ln in lines]
    ends = [ln["metadata"]["request_end_ns"] for ln in lines]
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "aiperf_version": None,
        "benchmark_id": f"burstlab:{run.path.name}",
        "request_throughput": {"unit": "requests/sec", "avg": len(good) / duration}
        if duration
        else None,
        "request_latency": _result(metric("request_latency"), "ms"),
        "request_count": {"unit": "requests", "avg": len(good)},
        "time_to_first_token": _result(metric("time_to_first_token"), "ms"),
        "time_to_second_token": _result(metric("time_to_second_token"), "ms"),
        "inter_token_latency": _result(metric("inter_token_latency"), "ms"),
        "inter_chunk_latency": _result(metric("inter_chunk_latency"), "ms"),
        "output_token_throughput": {"unit": "tokens/sec", "avg": sum(osl) / duration}
        if duration
        else None,
        "output_sequence_length": _result(osl, "tokens"),
        "input_sequence_length": _result(isl, "tokens"),
        "min_request_timestamp": {"unit": "ns", "avg": min(starts)} if starts else None,
        "max_response_timestamp": {"unit": "ns", "avg": max(ends)} if ends else None,
        "benchmark_duration": {"unit": "sec", "avg": duration},
        "total_isl": {"unit": "tokens", "avg": sum(isl)},
        "total_osl": {"unit": "tokens", "avg": sum(osl)},
        "error_request_count": {"unit": "requests", "avg": len(lines) - len(good)}
        if len(lines) > len(good)
        else None,
        "was_cancelled": bool(summary.interrupted),
        "start_time": utc(run.t0_unix),
        "end_time": utc(run.t0_unix + duration),
    }
    return {k: clean(v) for k, v in doc.items()}


def export(run: BurstlabRun, out: str | Path, *, overwrite: bool = False) -> list[str]:
    """Write `out/profile_export.jsonl` and `out/profile_export_aiperf.json` atomically."""
    lines = record_lines(run)
    doc = aggregate(run, lines)
    with staged_dir(out, overwrite=overwrite) as tmp:
        text = "".join(json.dumps(ln, allow_nan=False) + "\n" for ln in lines)
        (tmp / RECORDS_FILE).write_text(text, encoding="utf-8")
        write_json(tmp / AGGREGATE_FILE, doc)
    return [RECORDS_FILE, AGGREGATE_FILE]


def _value(metrics: dict[str, Any], tag: str, path: Path, line: int, unit: str) -> Any:
    m = metrics.get(tag)
    if m is None:
        return None
    if not isinstance(m, dict) or "value" not in m:
        raise InputError(path, "not a metric value", line=line, field=f"metrics.{tag}",
                         expected='{"value": …, "unit": …}')  # fmt: skip
    if m.get("unit") not in (unit, None):
        raise InputError(path, "unexpected unit", line=line, field=f"metrics.{tag}.unit",
                         expected=unit, found=m.get("unit"))  # fmt: skip
    return m["value"]


def _number(v: Any, path: Path, line: int, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InputError(path, "not a finite number", line=line, field=field, found=repr(v))
    return float(v)


def _ns(meta: dict[str, Any], key: str, path: Path, line: int, required: bool) -> int | None:
    v = meta.get(key)
    if v is None:
        if required:
            raise InputError(path, "missing timestamp", line=line, field=f"metadata.{key}",
                             expected="Unix nanoseconds")  # fmt: skip
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(path, "not Unix nanoseconds", line=line, field=f"metadata.{key}",
                         found=repr(v))  # fmt: skip
    return v


def _server_out(usage: Any, osl: Any) -> int | None:
    """The server's output count: usage.completion_tokens when AIPerf kept it, else AIPerf's
    output_sequence_length (its tokenizer's count, or the server's with
    --use-server-token-count)."""
    if usage is not None:
        return int(usage)
    return int(osl) if osl is not None else None


def read(path: Path) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Records (RECORD_SCHEMA) and run.json fields from `profile_export.jsonl`.

    Run clock: the earliest credit_issued_ns (else request_start_ns) is 0; warm-up records
    (benchmark_phase "warmup") are left out, as AIPerf's own statistics do."""
    raw: list[tuple[int, dict[str, Any]]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read AIPerf records ({exc.strerror})") from None
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise InputError(path, f"not a JSON line ({exc})", line=no) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
            raise InputError(path, "not an AIPerf record", line=no, field="metadata",
                             expected="an object")  # fmt: skip
        if not isinstance(doc.get("metrics", {}), dict):
            raise InputError(path, "not an AIPerf record", line=no, field="metrics",
                             expected="an object")  # fmt: skip
        if doc["metadata"].get("benchmark_phase", "profiling") == "warmup":
            continue
        raw.append((no, doc))
    if not raw:
        raise InputError(path, "no profiling records", expected="one AIPerf record per line")
    bases = []
    for no, doc in raw:
        meta = doc["metadata"]
        start = _ns(meta, "request_start_ns", path, no, True)
        issued = _ns(meta, "credit_issued_ns", path, no, False)
        bases.append(issued if issued is not None else start)
    origin = min(b for b in bases if b is not None)
    rows: list[Imported] = []
    for no, doc in raw:
        meta, metrics, err = doc["metadata"], doc.get("metrics") or {}, doc.get("error")
        if err is not None and not isinstance(err, dict):
            raise InputError(path, "not an error object", line=no, field="error")
        start_ns = _ns(meta, "request_start_ns", path, no, True)
        assert start_ns is not None
        end_ns = _ns(meta, "request_end_ns", path, no, False)
        issued = _ns(meta, "credit_issued_ns", path, no, False)
        ack = _ns(meta, "request_ack_ns", path, no, False)

        def clock(ns: int | None) -> float | None:
            return None if ns is None else (ns - origin) / 1e9

        sent = clock(start_ns)
        assert sent is not None
        kind = err.get("type") if err else None
        dropped = kind == "dropped"
        ok = err is None
        isl = _value(metrics, "input_sequence_length", path, no, "tokens")
        if isl is None:
            isl = _value(metrics, "error_isl", path, no, "tokens")
        osl = _value(metrics, "output_sequence_length", path, no, "tokens")
        usage_out = _value(metrics, "usage_completion_tokens", path, no, "tokens")
        usage_in = _value(metrics, "usage_prompt_tokens", path, no, "tokens")
        row = Imported(
            sent_s=None if dropped else sent,
            intended_s=clock(issued) if issued is not None else sent,
            ok=ok,
            first_byte_s=clock(ack),
            end_s=None if dropped else clock(end_ns),
            error=(err.get("message") or kind) if err else None,
            error_kind=kind
            if kind
            in (
                "refused",
                "reset",
                "http",
                "timeout",
                "cut",
                "malformed",
                "server-error",
                "client",
                "cancelled",
                "dropped",
            )
            else None,
            status=(err.get("code") if err else 200),
            dropped=dropped,
            input_tokens=int(isl) if isl is not None else None,
            prompt_tokens_client=int(isl) if isl is not None else None,
            prompt_tokens_server=int(usage_in) if usage_in is not None else None,
            output_tokens_server=_server_out(usage_out, osl) if ok else None,
            output_tokens_client=int(osl) if osl is not None and ok else None,
            session_id=meta.get("conversation_id"),
            turn=meta.get("turn_index"),
        )
        if ok:
            ttft = _value(metrics, "time_to_first_token", path, no, "ms")
            if ttft is None:
                raise InputError(path, "a successful record without TTFT", line=no,
                                 field="metrics.time_to_first_token")  # fmt: skip
            first = sent + _number(ttft, path, no, "metrics.time_to_first_token") / 1000.0
            chunks = [first]
            icl = _value(metrics, "inter_chunk_latency", path, no, "ms") or []
            if not isinstance(icl, list):
                icl = [icl]
            for j, g in enumerate(icl):
                chunks.append(chunks[-1] + _number(g, path, no, f"inter_chunk_latency[{j}]") / 1e3)
            row.first_token_s = first
            row.chunk_times_s = chunks
            if row.end_s is None:
                lat = _value(metrics, "request_latency", path, no, "ms")
                row.end_s = sent + _number(lat, path, no, "request_latency") / 1e3 if lat else None
            if row.end_s is None:
                row.end_s = chunks[-1]
        rows.append(row)
    records = records_from(rows)
    run = {
        "source": f"aiperf:{path.parent.name}",
        "t0_unix_ns": origin,
        "imported_from": {"tool": "aiperf", "file": str(path)},
    }
    return records, run
