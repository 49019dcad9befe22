"""Benchmark: the replay client's own cost, per client core (issue 11; docs/replay.md "The
client's own cost"). Targets: ≥ 10,000 req/s per core at 16 tokens per answer, ≥ 1,000,000 SSE
events/s per core at 256 tokens, p99 schedule lag ≤ 1 ms at 80 % of the ceiling.

The client runs on CPU 0 and the instant server (its own process; never the bottleneck) on
CPU 1 (os.sched_setaffinity; --no-pin to leave scheduling alone). For 16 and 256 tokens per
answer (the instant server sends one SSE event per token, then a usage event and [DONE]), it
replays evenly spaced schedules at increasing rates and prints, per rate: delivered/offered,
p50/p99/max schedule lag, the client's CPU µs per request and per SSE event (process CPU
between the first and last scheduled send, divided by the requests sent meanwhile; the record
writer thread included), and — unless --no-baseline — a baseline client paced the way
`vllm bench serve` paces (create the request task, then `sleep(interval)` relative to the
previous wake-up; aiohttp on the stock asyncio loop, same server, same bodies). The ceiling is
the highest rate with delivered/offered ≥ 0.99 and p99 lag ≤ --lag-bound-ms (1 ms), every lower
rate passing too. The box's load average is printed before and after: on a shared machine the
lag tail is mostly other processes' scheduling.

Usage: python benchmarks/replay.py [--tokens 16,256] [--duration 3] [--rates16 ...]
       [--rates256 ...] [--no-baseline] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from burstlab.engines.instant import instant_server
from burstlab.replay.client import ClientOptions, Plan, ReplayClient, run_async
from burstlab.replay.prompts import request_body
from burstlab.replay.records import RecordWriter, read_records

RATES = {
    16: "500,1000,2000,3000,4000,6000,8000,10000",
    256: "100,250,500,1000,1500,2000,3000,4000",
}
LEAD_S = 0.3  # run-clock seconds before the first send (connection pool warm-up excluded)


def cpu_s() -> float:
    """This process's CPU time, user + system, all threads (seconds)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def even_plan(rate: float, n: int, tokens: int) -> Plan:
    """`n` requests `1/rate` seconds apart, `tokens` output tokens each."""
    body = request_body("completions", None, " a" * 32, tokens)
    return Plan(
        req_id=list(range(n)), intended_s=[LEAD_S + i / rate for i in range(n)],
        bodies=[body] * n, input_tokens=[32] * n, prompt_tokens_client=[32] * n,
        output_tokens_target=[tokens] * n, session_id=[None] * n, turn=[None] * n,
        follows=[-1] * n, think_s=[None] * n,
    )  # fmt: skip


def measure(url: str, rate: float, duration_s: float, tokens: int) -> dict:
    """One rate step with burstlab's client: delivery, lag (ms) and CPU per request/event."""
    n = max(2, int(rate * duration_s))
    marks: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="burstlab-bench-") as tmp:
        client = ReplayClient(
            even_plan(rate, n, tokens), ClientOptions(url=url), RecordWriter(Path(tmp) / "records")
        )

        def tick(_stats) -> None:
            t = time.perf_counter() - client.t0
            if "a" not in marks and t >= LEAD_S:
                marks["a"] = (cpu_s(), t)
            if t <= LEAD_S + duration_s:
                marks["b"] = (cpu_s(), t)

        client.on_tick, client.tick_s = tick, 0.1
        run_async(client.run())
        rec = read_records(tmp)
        saturated = client.stats.client_saturated
    (cpu_a, t_a), (cpu_b, t_b) = marks["a"], marks.get("b", marks["a"])
    sent = rec["sent_s"].to_numpy()
    inside = int(((sent >= t_a) & (sent < t_b)).sum())
    cpu_req = (cpu_b - cpu_a) / inside * 1e6 if inside else float("nan")
    lag = rec["lag_s"].drop_nulls().to_numpy() * 1000
    ok = int(rec["ok"].sum())
    span = float(np.nanmax(sent) - np.nanmin(sent)) if n > 1 else 1.0
    delivered = (n - 1) / max(span, 1e-9) * ok / n
    events = tokens + 2  # token chunks, the usage chunk, [DONE]
    return {
        "tokens": tokens,
        "offered_rps": rate,
        "delivered_ratio": delivered / rate,
        "lag_p50_ms": float(np.percentile(lag, 50)),
        "lag_p99_ms": float(np.percentile(lag, 99)),
        "lag_max_ms": float(lag.max()),
        "cpu_us_per_request": cpu_req,
        "cpu_us_per_event": cpu_req / events,
        "events_per_core_s": 1e6 / (cpu_req / events) if cpu_req == cpu_req else 0.0,
        "errors": n - ok,
        "saturated": saturated,
    }


async def relative_sleep_client(url: str, rate: float, n: int, tokens: int) -> dict:
    """The peers' pacing: launch a task, then sleep 1/rate after it (drift accumulates)."""
    body = request_body("completions", None, " a" * 32, tokens)
    lags: list[float] = []
    ok = 0

    async def one(session, intended, t0):
        nonlocal ok
        lags.append(time.perf_counter() - t0 - intended)
        async with session.post(url + "/v1/completions", data=body) as resp:
            async for _ in resp.content.iter_any():
                pass
            ok += resp.status == 200

    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        tasks = []
        t0 = time.perf_counter()
        for i in range(n):
            tasks.append(asyncio.create_task(one(session, i / rate, t0)))
            await asyncio.sleep(1.0 / rate)
        await asyncio.gather(*tasks)
    lag = np.array(lags)
    span = max(lags[-1] + (n - 1) / rate, 1e-9)  # last send − first send (first lag ≈ 0)
    delivered = (n - 1) / span * ok / n
    return {
        "delivered_ratio": delivered / rate,
        "lag_p99_ms": float(np.percentile(lag, 99) * 1000),
    }


def passes(row: dict, bound_ms: float) -> bool:
    return row["delivered_ratio"] >= 0.99 and row["lag_p99_ms"] <= bound_ms


def sweep(url: str, tokens: int, rates: list[float], args: argparse.Namespace) -> list[dict]:
    """Rates in ascending order until two in a row fail (the ceiling is below them)."""
    print(
        f"\n{tokens} tokens/answer\n{'offered':>8} | {'deliv/off':>9} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'max ms':>7} {'µs/req':>7} {'µs/event':>8} {'events/core-s':>13}"
        + ("" if args.no_baseline else f" | {'baseline deliv/off':>18} {'p99 ms':>7}")
    )
    rows, failed = [], 0
    for rate in rates:
        row = measure(url, rate, args.duration, tokens)
        line = (
            f"{rate:8.0f} | {row['delivered_ratio']:9.3f} {row['lag_p50_ms']:7.3f} "
            f"{row['lag_p99_ms']:7.3f} {row['lag_max_ms']:7.2f} {row['cpu_us_per_request']:7.0f} "
            f"{row['cpu_us_per_event']:8.2f} {row['events_per_core_s']:13,.0f}"
        )
        if not args.no_baseline:
            n = max(2, int(rate * args.duration))
            base = asyncio.run(relative_sleep_client(url, rate, n, tokens))
            row["baseline_delivered_ratio"] = base["delivered_ratio"]
            row["baseline_lag_p99_ms"] = base["lag_p99_ms"]
            line += f" | {base['delivered_ratio']:18.3f} {base['lag_p99_ms']:7.1f}"
        if row["saturated"]:
            line += f"  [client: {row['saturated']}]"
        print(line, flush=True)
        rows.append(row)
        failed = 0 if passes(row, args.lag_bound_ms) else failed + 1
        if failed >= 2:
            break
    return rows


def ceiling(rows: list[dict], bound_ms: float) -> float | None:
    """The highest rate that passed with every lower rate passing too."""
    best = None
    for row in rows:
        if not passes(row, bound_ms):
            break
        best = row["offered_rps"]
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tokens", default="16,256", help="output tokens per answer, comma-separated")
    ap.add_argument("--rates16", default=RATES[16])
    ap.add_argument("--rates256", default=RATES[256])
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per rate step")
    ap.add_argument("--lag-bound-ms", type=float, default=1.0)
    ap.add_argument("--no-baseline", action="store_true", help="skip the peer-style baseline")
    ap.add_argument("--no-pin", action="store_true", help="do not pin client and server")
    args = ap.parse_args()
    print(f"replay client benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    with instant_server() as server:
        pinned = not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1
        if pinned:
            os.sched_setaffinity(0, {0})
            os.sched_setaffinity(server.process.pid, {1})
        print("client on CPU 0, instant server on CPU 1" if pinned else "not pinned")
        measure(server.base_url, 200, 1.0, 16)  # discarded: one-time costs of a fresh process
        for tokens in (int(t) for t in args.tokens.split(",")):
            spec = args.rates16 if tokens == 16 else args.rates256 if tokens == 256 else RATES[16]
            rows = sweep(server.base_url, tokens, [float(r) for r in spec.split(",")], args)
            cap = ceiling(rows, args.lag_bound_ms)
            at_cap = [r for r in rows if r["offered_rps"] == cap]
            cost = at_cap[0] if at_cap else min(rows, key=lambda r: r["cpu_us_per_request"])
            print(
                f"ceiling at {tokens} tokens: {cap or 'below the lowest rate'} req/s "
                f"(delivered/offered ≥ 0.99, p99 lag ≤ {args.lag_bound_ms:g} ms); CPU there "
                f"{cost['cpu_us_per_request']:.0f} µs/request = {1e6 / cost['cpu_us_per_request']:,.0f}"
                f" req/core-s, {cost['cpu_us_per_event']:.2f} µs/event = "
                f"{cost['events_per_core_s']:,.0f} events/core-s"
            )
    print(f"load average after: {os.getloadavg()}")
    sys.exit(0)


if __name__ == "__main__":
    main()
