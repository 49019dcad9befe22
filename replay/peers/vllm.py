"""vLLM `bench serve` result JSON (``--save-result --save-detailed``), both ways.

The file is one JSON object: run settings (date, backend, model_id, num_prompts, request_rate,
max_concurrency …), totals (duration s, completed, failed, total_input_tokens,
total_output_tokens, request_throughput req/s, output_throughput and total_token_throughput
tok/s, max_concurrent_requests), statistics ``{mean,median,std,pNN}_{ttft,tpot,itl,e2el}_ms``
(milliseconds), and with ``--save-detailed`` per-request arrays in request order:
``input_lens``, ``output_lens``, ``ttfts`` (s), ``itls`` (s, one list of chunk gaps per
request), ``latencies`` (s), ``start_times`` (s, `time.perf_counter()`), ``queue_times`` (s,
waiting for a ``--max-concurrency`` slot), ``generated_texts``, ``errors`` ("" = success).

Mapping (burstlab → vLLM): ttfts = first_token_s − sent_s; itls = gaps between chunk_times_s
(vLLM's ITL is the raw chunk gap, burstlab's ICL); latencies = end_s − sent_s (burstlab E2E: to
the end of the stream; vLLM measures to the last chunk with choices); start_times = sent_s (the
run clock stands in for perf_counter); queue_times = queue_s; input_lens = prompt tokens
(server, else client, else target); output_lens = output tokens (server, else client; 0 when
failed, as vLLM writes); errors = error text. A request dropped behind schedule (never sent)
becomes a failed entry whose error starts with ``dropped``. Statistics are computed from these
arrays the way vLLM does (numpy, population std, linear percentiles; TPOT per request with more
than one output token).
"""

from __future__ import annotations

import datetime as dt
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
)

RESULT_FILE = "vllm-bench-serve.json"
#: Percentiles written for every statistic (vLLM's default is 99 alone; these add the usual).
PERCENTILES = (50, 90, 95, 99)
#: Per-request arrays `--save-detailed` adds, all of one length (the request count).
DETAILED = ("input_lens", "output_lens", "ttfts", "itls", "start_times", "errors")
DROPPED_ERROR = "dropped: never sent (behind schedule under --policy drop)"
NO_COUNTERPART = [
    "schedule-anchored latencies (TTFT_sched, E2E_sched) and schedule lag: vLLM keeps no "
    "intended send time (queue_times carries only max-concurrency waiting)",
    "dropped requests: written as failed entries with error 'dropped: …'",
    "error kinds, HTTP status, finish reasons, first byte times, client-side token counts",
    "generated texts (burstlab does not keep them: empty strings)",
    "ITL spread over multi-token chunks: vLLM's itls are raw chunk gaps (burstlab ICL)",
]


def _prompt_tokens(row: dict[str, Any]) -> int:
    for key in ("prompt_tokens_server", "prompt_tokens_client", "input_tokens"):
        if row.get(key) is not None:
            return int(row[key])
    return 0


def _output_tokens(row: dict[str, Any]) -> int:
    if not row["ok"]:
        return 0
    for key in ("output_tokens_server", "output_tokens_client"):
        if row.get(key) is not None:
            return int(row[key])
    return 0


def result_dict(run: BurstlabRun) -> dict[str, Any]:
    """The vLLM `bench serve` result (with the detailed arrays) of a burstlab run."""
    rows = run.records.sort("req_id").to_dicts()
    ttfts: list[float] = []
    itls: list[list[float]] = []
    latencies: list[float] = []
    start_times: list[float] = []
    queue_times: list[float] = []
    errors: list[str] = []
    input_lens = [_prompt_tokens(r) for r in rows]
    output_lens = [_output_tokens(r) for r in rows]
    for r in rows:
        sent = r["sent_s"]
        ok = bool(r["ok"]) and sent is not None
        start = sent if sent is not None else r["intended_s"]
        start_times.append(float(start))
        queue_times.append(float(r["queue_s"] or 0.0))
        if ok and r["first_token_s"] is not None:
            ttfts.append(r["first_token_s"] - sent)
        else:
            ttfts.append(0.0)
        itls.append(gaps(r["chunk_times_s"]) if ok else [])
        latencies.append(r["end_s"] - sent if ok and r["end_s"] is not None else 0.0)
        if r["dropped"]:
            errors.append(DROPPED_ERROR)
        elif ok:
            errors.append("")
        else:
            kind = r["error_kind"] or "error"
            errors.append(f"{kind}: {r['error']}" if r["error"] else kind)
    good = [i for i, e in enumerate(errors) if e == ""]
    tpots = [(latencies[i] - ttfts[i]) / (output_lens[i] - 1) for i in good if output_lens[i] > 1]
    summary = summarize(run.records, scheduled=run.records.height)
    duration = summary.duration_s
    total_in = sum(input_lens[i] for i in good)
    total_out = sum(output_lens[i] for i in good)
    target = run.run.get("target") or {}
    schedule = run.run.get("schedule") or {}
    offered = summary.offered_rate_rps
    started = dt.datetime.fromtimestamp(run.t0_unix, dt.timezone.utc)
    result: dict[str, Any] = {
        "date": started.strftime("%Y%m%d-%H%M%S"),
        "endpoint_type": "openai-chat" if target.get("endpoint") == "chat" else "openai",
        "backend": "openai-chat" if target.get("endpoint") == "chat" else "openai",
        "label": "burstlab",
        "model_id": run.run.get("model"),
        "tokenizer_id": run.run.get("model"),
        "num_prompts": len(rows),
        "request_rate": offered if offered is not None else "inf",
        "burstiness": None,
        "max_concurrency": target.get("max_concurrency"),
        "burstlab_source": run.run.get("source"),
        "burstlab_speedup": schedule.get("speedup"),
        "duration": duration,
        "completed": len(good),
        "failed": len(rows) - len(good),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": len(good) / duration if duration else None,
        "request_goodput": summary.goodput.goodput_rps if summary.goodput else None,
        "output_throughput": total_out / duration if duration else None,
        "total_token_throughput": (total_in + total_out) / duration if duration else None,
        "input_lens": input_lens,
        "output_lens": output_lens,
        "ttfts": ttfts,
        "itls": itls,
        "latencies": latencies,
        "start_times": start_times,
        "queue_times": queue_times,
        "generated_texts": [""] * len(rows),
        "errors": errors,
        "max_concurrent_requests": summary.peak_in_flight,
    }
    per_metric = {
        "ttft": [ttfts[i] for i in good],
        "tpot": tpots,
        "itl": [g for i in good for g in itls[i]],
        "e2el": [latencies[i] for i in good],
    }
    for name, values in per_metric.items():
        s = stats(values, PERCENTILES)
        ms = {k: (v * 1000.0 if v is not None else None) for k, v in s.items()}
        result[f"mean_{name}_ms"] = ms["mean"]
        result[f"median_{name}_ms"] = ms["p50"]
        result[f"std_{name}_ms"] = ms["std"]
        for p in PERCENTILES:
            result[f"p{p}_{name}_ms"] = ms[f"p{p}"]
    return {k: clean(v) for k, v in result.items()}


def export(run: BurstlabRun, out: str | Path, *, overwrite: bool = False) -> list[str]:
    """Write `out/vllm-bench-serve.json` (atomically, the whole folder); returns file names."""
    result = result_dict(run)
    with staged_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / RESULT_FILE, result, indent=None)
    return [RESULT_FILE]


def _list(doc: dict[str, Any], key: str, path: Path, n: int) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise InputError(path, "not a detailed vLLM result", field=key, expected="a list")
    if len(value) != n:
        raise InputError(path, "per-request arrays differ in length", field=key,
                         expected=f"{n} entries", found=len(value))  # fmt: skip
    return value


def _num(value: Any, path: Path, key: str, i: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(path, "not a finite number", field=f"{key}[{i}]", found=repr(value))
    return float(value)


def is_result(doc: Any) -> bool:
    """Whether a JSON document looks like a vLLM `bench serve` result."""
    if not isinstance(doc, dict):
        return False
    return "ttfts" in doc or {"completed", "request_throughput", "duration"} <= set(doc)


def read(doc: dict[str, Any], path: Path) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Records (RECORD_SCHEMA) and run.json fields from a vLLM result document.

    Run clock: the earliest start_time − queue_time (the first release) is 0."""
    if "ttfts" not in doc:
        raise InputError(path, "a vLLM result without per-request arrays (saved without "
                         "--save-detailed)", field="ttfts", expected="a list")  # fmt: skip
    starts = doc.get("start_times")
    if not isinstance(starts, list):
        raise InputError(path, "not a detailed vLLM result", field="start_times",
                         expected="a list (vLLM ≥ 0.10 with --save-detailed)")  # fmt: skip
    n = len(starts)
    cols = {k: _list(doc, k, path, n) for k in DETAILED}
    latencies = _list(doc, "latencies", path, n) if "latencies" in doc else None
    queues = _list(doc, "queue_times", path, n) if "queue_times" in doc else [0.0] * n
    start = [_num(v, path, "start_times", i) for i, v in enumerate(starts)]
    queue = [
        _num(v if v is not None else 0.0, path, "queue_times", i) for i, v in enumerate(queues)
    ]
    origin = min((s - q for s, q in zip(start, queue, strict=True)), default=0.0)
    rows: list[Imported] = []
    for i in range(n):
        err = cols["errors"][i]
        if err is not None and not isinstance(err, str):
            raise InputError(path, "not an error text", field=f"errors[{i}]", found=repr(err))
        ok = not err
        sent = start[i] - origin
        itl = cols["itls"][i]
        if not isinstance(itl, list):
            raise InputError(path, "not a list of gaps", field=f"itls[{i}]", found=repr(itl))
        out_len = cols["output_lens"][i]
        in_len = cols["input_lens"][i]
        for key, v in (("output_lens", out_len), ("input_lens", in_len)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise InputError(path, "not a token count", field=f"{key}[{i}]", found=repr(v))
        dropped = bool(err) and str(err).startswith("dropped")
        row = Imported(
            sent_s=None if dropped else sent,
            intended_s=sent - queue[i],
            ok=ok,
            error=err or None,
            error_kind="dropped" if dropped else None,
            dropped=dropped,
            status=200 if ok else None,
            queue_s=queue[i] if not dropped else None,
            input_tokens=in_len,
            prompt_tokens_client=in_len,
        )
        if ok:
            ttft = _num(cols["ttfts"][i], path, "ttfts", i)
            first = sent + ttft
            chunks = [first]
            for j, g in enumerate(itl):
                chunks.append(chunks[-1] + _num(g, path, f"itls[{i}]", j))
            row.first_token_s = first
            row.chunk_times_s = chunks
            lat = _num(latencies[i], path, "latencies", i) if latencies is not None else None
            row.end_s = sent + lat if lat is not None else chunks[-1]
            row.output_tokens_server = out_len
            row.output_tokens_client = len(chunks)
        elif not dropped:
            row.end_s = sent
        rows.append(row)
    records = records_from(rows)
    run = {
        "source": f"vllm:{path.name}",
        "model": doc.get("model_id"),
        "target": {"endpoint": "chat" if doc.get("backend") == "openai-chat" else "completions",
                   "max_concurrency": doc.get("max_concurrency")},
        "imported_from": {"tool": "vllm bench serve", "file": str(path),
                          "date": doc.get("date"), "request_rate": doc.get("request_rate")},
    }  # fmt: skip
    return records, run
