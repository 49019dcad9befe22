"""The metric dictionary (docs/design.md §3) computed from per-request records.

Everything is derived from the records on disk, so a summary can be recomputed, audited or
extended after the run. Definitions (seconds):
- TTFT = first chunk carrying generated text − sent_s; TTFT_sched = same − intended_s.
- E2E = end_s − sent_s; E2E_sched = end_s − intended_s (free of coordinated omission).
- TPOT = (E2E − TTFT) / (output_tokens − 1), per request; undefined (null) for 1 token.
- ITL = token gaps: a chunk of k tokens spreads its gap to the previous chunk over k tokens
  (k entries of gap/k), and the k−1 extra tokens of the first chunk arrived with it (gap 0).
- ICL = the raw gaps between text chunks, whatever they carry.
- Schedule lag = sent_s − intended_s.
Output token counts prefer the server's `usage`; the client's count is kept beside it and the
mismatch rate reported. Prefix cache: intended / observed hit rate = Σ intended (hash_ids) /
Σ server-reported cached prompt tokens over Σ prompt tokens (`cache_truth`). Latency statistics use successful requests only; counts use all.
Requests the client itself failed (error_kind ``client``) are no server fault: they are counted
in `client_saturation.client_errors`, never in `counts.failed` or `errors_by_kind`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from burstlab.replay.summary import (
    CACHE_MISS_FRACTION,
    CLIENT_LAG_BOUND_S,
    CLIENT_LAG_MIN_REQUESTS,
    CacheTruth,
    ClientSaturation,
    RunSummary,
)
from burstlab.scalars import integer, number

PERCENTILES: tuple[float, ...] = (50, 90, 95, 99, 99.9)
LATENCY_COLUMNS = ("ttft_s", "ttft_sched_s", "e2e_s", "e2e_sched_s", "tpot_s")
#: error_kind of a request the client itself failed (not a server fault).
CLIENT_ERROR = "client"


def per_request(records: pl.DataFrame) -> pl.DataFrame:
    """Records plus the per-request metrics (ttft_s, ttft_sched_s, e2e_s, e2e_sched_s, tpot_s,
    output_tokens). Latencies are null for failed requests."""
    ok = pl.col("ok")
    out = pl.coalesce("output_tokens_server", "output_tokens_client").alias("output_tokens")
    frame = records.with_columns(
        pl.when(ok).then(pl.col("first_token_s") - pl.col("sent_s")).alias("ttft_s"),
        pl.when(ok).then(pl.col("first_token_s") - pl.col("intended_s")).alias("ttft_sched_s"),
        pl.when(ok).then(pl.col("end_s") - pl.col("sent_s")).alias("e2e_s"),
        pl.when(ok).then(pl.col("end_s") - pl.col("intended_s")).alias("e2e_sched_s"),
        out,
    )
    return frame.with_columns(
        pl.when(ok & (pl.col("output_tokens") > 1) & pl.col("ttft_s").is_not_null())
        .then((pl.col("e2e_s") - pl.col("ttft_s")) / (pl.col("output_tokens") - 1))
        .alias("tpot_s")
    )


def token_gaps(records: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """(ITL, ICL) over successful requests, seconds. See the module docstring for ITL."""
    ok = records.filter(pl.col("ok") & (pl.col("chunk_times_s").list.len() > 0))
    if ok.height == 0:
        empty = pl.Series("gap", [], pl.Float64)
        return empty, empty
    chunks = (
        ok.select("req_id", "chunk_times_s", "chunk_tokens")
        .explode("chunk_times_s", "chunk_tokens")
        .with_columns(
            gap=pl.col("chunk_times_s").diff().over("req_id"),
            k=pl.col("chunk_tokens").fill_null(1).clip(1, None),
        )
    )
    icl = chunks["gap"].drop_nulls()
    later = chunks.filter(pl.col("gap").is_not_null())
    spread = (pl.col("gap") / pl.col("k")).repeat_by(pl.col("k")).explode()
    itl_later = later.select(spread.alias("gap"))["gap"]
    first_extra = chunks.filter(pl.col("gap").is_null())["k"] - 1
    zeros = pl.Series("gap", [0.0] * int(first_extra.sum()), pl.Float64)
    itl = pl.concat([itl_later, zeros])
    return itl, icl


def describe(values: pl.Series, percentiles: Sequence[float] = PERCENTILES) -> dict:
    """count, mean, std, min, p50…, max of a series (nulls dropped); None values when empty."""
    s = values.drop_nulls().cast(pl.Float64)
    n = s.len()
    out: dict[str, float | int | None] = {"count": n}
    if n == 0:
        out.update({"mean": None, "std": None, "min": None, "max": None})
        out.update({_pname(p): None for p in percentiles})
        return out
    out["mean"] = float(s.mean())
    out["std"] = float(s.std(ddof=0)) if n > 1 else 0.0
    out["min"] = float(s.min())
    for p in percentiles:
        out[_pname(p)] = float(s.quantile(p / 100, interpolation="linear"))
    out["max"] = float(s.max())
    return out


def _pname(p: float) -> str:
    return f"p{p:g}".replace(".", "_")


def latency_block(frame: pl.DataFrame, records: pl.DataFrame) -> dict:
    """Distribution summaries of every latency metric for one set of requests."""
    block = {c: describe(frame[c]) for c in LATENCY_COLUMNS}
    itl, icl = token_gaps(records)
    block["itl_s"] = describe(itl)
    block["icl_s"] = describe(icl)
    return block


def steady_mask(records: pl.DataFrame, warmup: float, drain: float) -> tuple[pl.Expr, list[float]]:
    """Requests whose intended time lies inside the steady window: the schedule span without
    its first `warmup` and last `drain` fractions (warm-up and drain excluded)."""
    if records.height == 0:
        return pl.lit(False), [0.0, 0.0]
    lo_t = number(records["intended_s"].min(), "intended_s")
    hi_t = number(records["intended_s"].max(), "intended_s")
    span = hi_t - lo_t
    lo, hi = lo_t + warmup * span, hi_t - drain * span
    return pl.col("intended_s").is_between(lo, hi), [lo, hi]


def summarize(
    records: pl.DataFrame,
    *,
    scheduled: int | None = None,
    warmup: float = 0.1,
    drain: float = 0.1,
    client_reasons: Sequence[str] = (),
    client_errors: int = 0,
) -> RunSummary:
    """The run summary with the metric dictionary's names (seconds, tokens, per second).

    `scheduled` is how many requests the schedule held (records may be fewer after Ctrl-C).
    `client_reasons` are the saturation reasons the client processes reported and
    `client_errors` the failures they counted themselves (see `client_saturation`).
    """
    pr = per_request(records)
    n = pr.height
    scheduled = n if scheduled is None else scheduled
    ok = pr.filter(pl.col("ok"))
    sent = pr.filter(pl.col("sent_s").is_not_null())
    client_failed = pl.col("error_kind").fill_null("") == CLIENT_ERROR
    n_client = int(pr.select(client_failed.sum()).item()) if n else 0
    errors = (
        pr.filter(~pl.col("ok") & ~pl.col("dropped") & ~client_failed)
        .group_by("error_kind")
        .len()
        .sort("error_kind")
        .rows()
    )
    duration = number(pr["end_s"].max(), "end_s") if n else 0.0
    span = time_span(pr["intended_s"]) if n > 1 else 0.0
    send_span = time_span(sent["sent_s"]) if sent.height > 1 else 0.0
    out_tokens = int(ok["output_tokens"].fill_null(0).sum())
    in_tokens = (
        int(ok["prompt_tokens_server"].fill_null(ok["input_tokens"]).sum()) if ok.height else 0
    )
    summary: dict = {
        "counts": {
            "scheduled": scheduled,
            "recorded": n,
            "not_sent": scheduled - n,
            "issued": sent.height,
            "completed": ok.height,
            "failed": n - ok.height - int(pr["dropped"].sum()) - n_client,
            "dropped": int(pr["dropped"].sum()),
            "late": int(pr["late"].sum()),
            "resent": int((pr["attempts"] > 1).sum()),
            "errors_by_kind": {k or "unknown": v for k, v in errors},
        },
        "duration_s": duration,
        "offered_rate_rps": (n - 1) / span if span > 0 else None,
        "send_rate_rps": (sent.height - 1) / send_span if send_span > 0 else None,
        "request_throughput_rps": ok.height / duration if duration > 0 else None,
        "output_throughput_tps": out_tokens / duration if duration > 0 else None,
        "input_throughput_tps": in_tokens / duration if duration > 0 else None,
        "total_input_tokens": in_tokens,
        "total_output_tokens": out_tokens,
        "peak_in_flight": peak_in_flight(pr),
        "schedule_lag_s": describe(sent["lag_s"]),
        "schedule_lag_over_time": _lag_bins(pr, span),
        "queue_s": describe(sent["queue_s"]),
        "tokens": token_agreement(ok),
        "full": latency_block(ok, ok),
    }
    mask, window = steady_mask(pr, warmup, drain)
    steady = ok.filter(mask)
    lo, hi = window
    ended = ok.filter(pl.col("end_s").is_between(lo, hi))
    summary["steady"] = {
        "window_s": window,
        "warmup_fraction": warmup,
        "drain_fraction": drain,
        "completed": steady.height,
        # completions that ended inside the window, per second of window
        "request_throughput_rps": ended.height / (hi - lo) if hi > lo else None,
        "output_throughput_tps": (
            int(ended["output_tokens"].fill_null(0).sum()) / (hi - lo) if hi > lo else None
        ),
        "schedule_lag_s": describe(sent.filter(mask)["lag_s"]),
        **latency_block(steady, steady),
    }
    offered = summary["offered_rate_rps"]
    send_rate = summary["send_rate_rps"]
    saturation = client_saturation(
        pr,
        reasons=client_reasons,
        client_errors=client_errors,
        delivered_ratio=send_rate / offered if offered and send_rate is not None else None,
    )
    summary["client_saturated"] = saturation.saturated
    summary["client_saturation"] = saturation.to_dict()
    cache = cache_truth(ok)
    if cache is not None:
        summary["cache"] = cache.to_dict()
    return RunSummary.from_dict(summary)


def cache_truth(ok: pl.DataFrame, miss_fraction: float = CACHE_MISS_FRACTION) -> CacheTruth | None:
    """Intended (trace hash_ids) vs observed (server-reported) prefix-cache hits over completed
    requests `ok` (see summary.CacheTruth); None when neither is known for any request."""
    if "prompt_tokens_cached" not in ok.columns or ok.height == 0:
        return None
    intended, observed = pl.col("prompt_tokens_intended_cached"), pl.col("prompt_tokens_cached")
    if ok.select(intended.is_not_null().any() | observed.is_not_null().any()).item() is not True:
        return None
    prompt = pl.coalesce("prompt_tokens_server", "input_tokens")

    def rate(col: pl.Expr) -> tuple[int, int, float | None]:
        has = ok.filter(col.is_not_null())
        cached = int(has.select(col.sum()).item() or 0)
        total = int(has.select(prompt.sum()).item() or 0)
        return has.height, cached, (cached / total if total else None)

    n_int, int_tok, int_rate = rate(intended)
    n_obs, obs_tok, obs_rate = rate(observed)
    meant = ok.filter(intended > 0)
    judged = meant.filter(observed.is_not_null())
    missed = judged.filter(observed < miss_fraction * intended).height
    return CacheTruth(
        requests=ok.height,
        intended_reported=n_int,
        observed_reported=n_obs,
        intended_cached_tokens=int_tok,
        observed_cached_tokens=obs_tok,
        intended_hit_rate=int_rate,
        observed_hit_rate=obs_rate,
        intended_requests=meant.height,
        missed_requests=missed,
        missed_share=missed / judged.height if judged.height else None,
        miss_fraction=miss_fraction,
    )


def client_lag(records: pl.DataFrame) -> pl.Series:
    """The client's own schedule lag per request, seconds: sent − intended less the time
    waiting for a max-concurrency slot (that queue is the configured cap, not the client
    falling behind); for a request dropped behind schedule, dispatch − intended. Requests
    never sent for another reason (cancelled by Ctrl-C) have none."""
    lag = (
        pl.when(pl.col("sent_s").is_not_null())
        .then(pl.col("lag_s") - pl.col("queue_s").fill_null(0.0))
        .when(pl.col("dropped"))
        .then(pl.col("dispatch_s") - pl.col("intended_s"))
    )
    return records.select(lag.alias("client_lag_s"))["client_lag_s"].drop_nulls()


def client_saturation(
    records: pl.DataFrame,
    *,
    reasons: Sequence[str] = (),
    client_errors: int = 0,
    delivered_ratio: float | None = None,
    lag_bound_s: float = CLIENT_LAG_BOUND_S,
) -> ClientSaturation:
    """Did the load generator saturate? Yes when a client process gave a reason (`reasons`),
    a request failed inside the client (error_kind ``client`` in the records, or
    `client_errors` counted live, whichever is more), or the p99 of `client_lag` over at least
    CLIENT_LAG_MIN_REQUESTS requests exceeds `lag_bound_s` (seconds)."""
    in_records = (
        int((records["error_kind"].fill_null("") == CLIENT_ERROR).sum()) if records.height else 0
    )
    n_client = max(in_records, int(client_errors))
    lag = client_lag(records) if records.height else pl.Series("client_lag_s", [], pl.Float64)
    p99 = number(lag.quantile(0.99, interpolation="linear"), "lag") if lag.len() else None
    worst = number(lag.max(), "lag") if lag.len() else None
    why = [r for r in reasons if r]
    if n_client:
        why.append(f"{n_client:,} requests failed inside the client")
    if p99 is not None and lag.len() >= CLIENT_LAG_MIN_REQUESTS and p99 > lag_bound_s:
        why.append(
            f"p99 schedule lag {p99 * 1000:.1f} ms > the {lag_bound_s * 1000:g} ms bound "
            "of a healthy client"
        )
    return ClientSaturation(
        saturated=bool(why),
        reasons=why,
        client_errors=n_client,
        lag_bound_s=lag_bound_s,
        lag_p99_s=p99,
        lag_max_s=worst,
        lag_measured=lag.len(),
        delivered_ratio=delivered_ratio,
    )


def context_outcome(records: pl.DataFrame) -> dict[str, int]:
    """The records split by their `oversized` flag (requests that needed more than the server's
    context vs those that fit; neither when it is null, i.e. unknown): recorded, failed (an
    error, not a drop) and short (completed with fewer output tokens than asked)."""
    flag = records["oversized"] if "oversized" in records.columns else None
    out: dict[str, int] = {}
    for name, want in (("oversized", True), ("fitting", False)):
        group = records.filter(flag == want) if flag is not None else records.clear()
        short = group.filter(
            pl.col("ok") & (pl.col("output_tokens_server") < pl.col("output_tokens_target"))
        )
        out[f"{name}_recorded"] = group.height
        out[f"{name}_failed"] = int((~group["ok"] & ~group["dropped"]).sum())
        out[f"{name}_short"] = short.height
    return out


def _lag_bins(pr: pl.DataFrame, span: float) -> dict:
    """Schedule lag p50 / p99 / max per bin of intended time (~100 bins), as lists."""
    bin_s = bin_width(max(span, 0.01))
    lag = lag_over_time(pr, bin_s)
    return {"bin_s": bin_s, **{c: lag[c].to_list() for c in ("t", "p50", "p99", "max", "n")}}


def peak_in_flight(pr: pl.DataFrame) -> int:
    """Most requests open at once (between sent_s and end_s)."""
    sent = pr.filter(pl.col("sent_s").is_not_null())
    if sent.height == 0:
        return 0
    events = pl.concat(
        [
            sent.select(t=pl.col("sent_s"), d=pl.lit(1)),
            sent.select(t=pl.col("end_s"), d=pl.lit(-1)),
        ]
    ).sort(["t", "d"])
    return integer(events["d"].cum_sum().max(), "in-flight count")


def time_span(times: pl.Series) -> float:
    """Latest minus earliest time of a non-empty column of run-clock seconds."""
    return number(times.max(), times.name) - number(times.min(), times.name)


def token_agreement(ok: pl.DataFrame) -> dict:
    """Client vs server token counts: how often they disagree (prompt and output)."""

    def rate(a: str, b: str) -> tuple[float | None, int]:
        both = ok.filter(pl.col(a).is_not_null() & pl.col(b).is_not_null())
        if both.height == 0:
            return None, 0
        return number((both[a] != both[b]).mean(), a), both.height

    prompt_rate, prompt_n = rate("prompt_tokens_client", "prompt_tokens_server")
    out_rate, out_n = rate("output_tokens_client", "output_tokens_server")
    target_rate, _ = rate("output_tokens_target", "output_tokens_server")
    return {
        "prompt_mismatch_rate": prompt_rate,
        "prompt_compared": prompt_n,
        "output_mismatch_rate": out_rate,
        "output_compared": out_n,
        "output_target_miss_rate": target_rate,
        "server_usage_missing": int(ok["output_tokens_server"].is_null().sum()),
    }


def bin_width(duration_s: float) -> float:
    """A round bin width (1, 2 or 5 × 10^k s) giving roughly 100 bins over `duration_s`."""
    raw = max(duration_s / 100, 0.01)
    exp = 10 ** math.floor(math.log10(raw))
    return float(next(m * exp for m in (1, 2, 5, 10) if raw <= m * exp))


def lag_over_time(records: pl.DataFrame, bin_s: float = 1.0) -> pl.DataFrame:
    """Schedule lag p50 / p99 / max per `bin_s` of intended time (seconds)."""
    sent = records.filter(pl.col("sent_s").is_not_null())
    return (
        sent.with_columns(t=(pl.col("intended_s") / bin_s).floor() * bin_s)
        .group_by("t")
        .agg(
            p50=pl.col("lag_s").quantile(0.5),
            p99=pl.col("lag_s").quantile(0.99),
            max=pl.col("lag_s").max(),
            n=pl.len(),
        )
        .sort("t")
    )


#: vLLM `bench serve` result key → (summary block, metric, statistic); ms keys are ×1000.
def vllm_keys(summary: RunSummary) -> dict:
    """The summary under vLLM `bench serve` JSON key names (ms for latencies)."""
    full = summary["full"]
    out: dict = {
        "duration": summary["duration_s"],
        "completed": summary["counts"]["completed"],
        "failed": summary["counts"]["failed"] + summary["counts"]["dropped"],
        "total_input_tokens": summary["total_input_tokens"],
        "total_output_tokens": summary["total_output_tokens"],
        "request_throughput": summary["request_throughput_rps"],
        "request_goodput": summary.goodput.goodput_rps if summary.goodput else None,
        "output_throughput": summary["output_throughput_tps"],
        "total_token_throughput": (
            (summary["total_input_tokens"] + summary["total_output_tokens"]) / summary["duration_s"]
            if summary["duration_s"]
            else None
        ),
        "max_concurrent_requests": summary["peak_in_flight"],
    }
    for name, key in (("ttft", "ttft_s"), ("tpot", "tpot_s"), ("itl", "itl_s"), ("e2el", "e2e_s")):
        d = full[key]
        out[f"mean_{name}_ms"] = _ms(d["mean"])
        out[f"median_{name}_ms"] = _ms(d["p50"])
        out[f"std_{name}_ms"] = _ms(d["std"])
        for p in ("p90", "p95", "p99"):
            out[f"{p}_{name}_ms"] = _ms(d[p])
    return out


def _ms(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v * 1000.0
