"""A dataset card for a replay run: what was fired at which engine, and what it delivered.

Reads the run directory the replay stage writes (`run.json`, `records/part-*.parquet`,
`summary.json`) and publishes the per-request records with a body that names the engine and
model, the load (source, window, scaling, offered rate), the SLOs, and the results in the
metric dictionary's terms (docs/design.md §3), full run and steady state side by side.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa

from burstlab import traces
from burstlab.cards.charts import save_card_chart
from burstlab.cards.hf import CardResult, finish_card, front_matter
from burstlab.cards.stats import fmt, kv_table, md_table, render_sections
from burstlab.errors import InputError
from burstlab.parquet import read_metadata
from burstlab.replay import read_records, read_summary, run_charts

#: Summary blocks a card tabulates (metric dictionary names → label, all shown in ms).
LATENCIES = {
    "ttft_s": "TTFT (first token − sent)",
    "ttft_sched_s": "TTFT_sched (first token − intended)",
    "tpot_s": "TPOT",
    "itl_s": "ITL (per token)",
    "icl_s": "ICL (per chunk)",
    "e2e_s": "E2E (end − sent)",
    "e2e_sched_s": "E2E_sched (end − intended)",
}
PCTS = ("mean", "p50", "p90", "p99", "max")


#: Sections of run.json that are JSON objects (a card reads keys inside them).
RUN_OBJECTS = ("target", "engine", "schedule", "prompts", "slo", "context")


def _strict(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number (burstlab writes strict JSON)")


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run.json, summary.json) of a run directory, with errors that name the missing file or
    the part that is not what `burstlab replay` writes (summary.json is checked field by field
    by `read_summary`)."""
    run_dir = Path(run_dir)
    docs = []
    for name in ("run.json", "summary.json"):
        path = run_dir / name
        if not path.is_file():
            raise InputError(path, "missing; is this a finished `burstlab replay` run directory?")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=_strict)
        except (ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
            raise InputError(path, f"not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise InputError(path, "not a burstlab run document", expected="a JSON object")
        docs.append(doc)
    run = docs[0]
    path = run_dir / "run.json"
    for key in RUN_OBJECTS:
        if run.get(key) is not None and not isinstance(run[key], dict):
            raise InputError(path, "not a burstlab run document", field=key, expected="an object")
    models = (run.get("engine") or {}).get("models")
    data = models.get("data") if isinstance(models, dict) else None
    if models is not None and not (
        isinstance(models, dict)
        and (data is None or (isinstance(data, list) and all(isinstance(m, dict) for m in data)))
    ):
        raise InputError(
            path, "not a burstlab run document", field="engine.models",
            expected="/v1/models as the server answered it",
        )  # fmt: skip
    for key, value in (run.get("slo") or {}).items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if key != "anchor" and value is not None and not number:
            raise InputError(path, "not a burstlab run document", field=f"slo.{key}",
                             expected="seconds", found=repr(value)[:60])  # fmt: skip
    return run, docs[1]


def run_card(run_dir: str | Path, out: Path) -> CardResult:
    """Fill the empty folder `out` with the card of a replay run directory
    (`burstlab.cards.card` stages the folder and puts it in place; see `hf.publish`)."""
    run_dir = Path(run_dir)
    run, summary = load_run(run_dir)
    typed = read_summary(run_dir)  # summary.json checked field by field before any use
    # part-NNNNN.parquet from one process, wKKK-part-NNNNN.parquet from worker K of many
    parts = sorted(p for p in (run_dir / "records").glob("*part-*.parquet") if p.name[0] != ".")
    if not parts:
        raise InputError(
            run_dir / "records", "no record parts (*part-*.parquet); the run recorded nothing"
        )
    (out / "data" / "records").mkdir(parents=True)
    for part in parts:
        shutil.copyfile(part, out / "data" / "records" / part.name)
    for name in ("run.json", "summary.json"):
        shutil.copyfile(run_dir / name, out / "data" / name)
    records = read_records(out / "data")
    charts = save_card_chart(run_charts(records, typed), out, "run")

    source = str(run.get("source") or "unknown")
    model = run.get("model") or "unknown model"
    sections = [
        ("About", about_markdown(run, summary, records.height)),
        ("Engine", engine_markdown(run)),
        ("Load", load_markdown(run, summary)),
        ("SLOs and goodput", goodput_markdown(run, summary)),
        ("Results", results_markdown(summary)),
        ("Charts", "![run](charts/run.png)\n\nSVG version beside it: `charts/run.svg`."),
        ("Caveats", "\n".join(f"- {c}" for c in run_caveats(run, summary))),
        ("Files", _files_markdown(parts)),
    ]
    body = render_sections(f"Replay of {source} against {model}", sections)
    meta = front_matter(
        pretty_name=f"burstlab replay: {source} → {model}",
        license_text=source_licence(source),
        rows=records.height,
        data_files={"records": ["data/records/*.parquet"]},
        tags=["replay", "benchmark", "latency"],
        task_categories=(),
    )
    data_files = [f"data/records/{p.name}" for p in parts] + ["data/run.json", "data/summary.json"]
    return finish_card("run", out, meta, body, data_files, charts)


def source_licence(source: str) -> str | None:
    """Licence of the replayed trace: the schedule and lengths are derived from it."""
    path = Path(source)
    if "\x00" not in source and path.suffix == ".parquet" and path.is_file():
        try:
            licence = read_metadata(path).get("licence")
        except (OSError, ValueError, AttributeError, pa.ArrowException):
            return None  # the replayed file changed since (or never was burstlab's)
        return licence if isinstance(licence, str) else None
    info = traces.source_info(source)
    return info.licence if info is not None else None


def about_markdown(run: dict, summary: dict, rows: int) -> str:
    target = run.get("target") or {}
    return (
        f"{rows:,} per-request records of an open-loop replay of `{run.get('source')}` against "
        f"`{target.get('target', target.get('url'))}` (model `{run.get('model')}`), started "
        f"{run.get('started_utc', '?')} with burstlab {run.get('burstlab_version', '?')}, seed "
        f"{run.get('seed')}. Every request had an intended send time fixed before the run; "
        "latencies are reported from the actual send and from the schedule (coordinated-"
        "omission free)."
    )


def engine_markdown(run: dict) -> str:
    """Model and what the server said about itself (/v1/models, /props)."""
    engine = run.get("engine") or {}
    rows = [["model sent", f"`{run.get('model')}`"], ["base URL", engine.get("base_url")]]
    models = (engine.get("models") or {}).get("data") or []
    for m in models:
        limit = m.get("max_model_len")
        about = f"owned by {m.get('owned_by', '?')}" + (
            f", max_model_len {fmt(limit)}" if limit else ""
        )
        rows.append(["served model", f"`{m.get('id')}` ({about})"])
    for key, value in sorted(engine.items()):
        if key not in ("models", "base_url", "reachable") and not isinstance(value, dict | list):
            rows.append([key, value])
    prompts = run.get("prompts") or {}
    if prompts:
        rows.append(
            [
                "prompt lengths",
                f"counted with {prompts.get('counter')} (exact: {fmt(prompts.get('exact'))})",
            ]
        )
    rows.append(["ignore_eos / min_tokens sent", fmt(run.get("engine_extras"))])
    return kv_table(rows)


def load_markdown(run: dict, summary: dict) -> str:
    sched = run.get("schedule") or {}
    target = run.get("target") or {}
    counts = sched.get("counts")
    if not isinstance(counts, dict):
        counts = {}
    rows = [
        ["source", f"`{run.get('source')}`"],
        ["window (trace s)", sched.get("window")],
        ["speedup", sched.get("speedup")],
        ["idle-gap cap (s)", sched.get("max_gap")],
        ["request limit", sched.get("limit")],
        ["requests scheduled", counts.get("scheduled")],
        ["schedule span (s)", _r(sched.get("span_s"))],
        ["offered rate (req/s)", _r(summary.get("offered_rate_rps"))],
        ["behind-schedule policy", target.get("policy")],
        ["late after (s)", target.get("late_after_s")],
        ["max concurrency", target.get("max_concurrency") or "unbounded"],
        ["endpoint", target.get("endpoint")],
    ]
    return kv_table(rows)


def goodput_markdown(run: dict, summary: dict) -> str:
    good = summary.get("goodput")
    slo = run.get("slo")
    if not slo or not good:
        return "No SLO was given for this run (`--slo`), so goodput was not computed."
    limits = ", ".join(f"{k} ≤ {v * 1000:g} ms" for k, v in slo.items() if k != "anchor" and v)
    rows = [
        ["SLOs", f"{limits} ({slo.get('anchor', 'service')}-anchored)"],
        ["attainment (good / issued)", _r(good.get("attainment"))],
        ["goodput (req/s)", _r(good.get("goodput_rps"))],
        ["goodput (output tokens/s)", _r(good.get("goodput_output_tps"))],
    ]
    rows += [[f"pass rate: {k}", _r(v)] for k, v in (good.get("pass_rate") or {}).items()]
    return kv_table(rows) + "\n\nErrors count as bad requests."


def results_markdown(summary: dict) -> str:
    """Counts, throughput and the latency table (ms), full run and steady state."""
    c = summary.get("counts", {})
    counts = md_table(
        ["scheduled", "issued", "completed", "failed", "dropped", "late"],
        [[c.get(k) for k in ("scheduled", "issued", "completed", "failed", "dropped", "late")]],
    )
    errors = c.get("errors_by_kind") or {}
    throughput = md_table(
        ["duration (s)", "req/s", "output tok/s", "input tok/s", "peak in flight"],
        [
            [
                _r(summary.get("duration_s")),
                _r(summary.get("request_throughput_rps")),
                _r(summary.get("output_throughput_tps")),
                _r(summary.get("input_throughput_tps")),
                summary.get("peak_in_flight"),
            ]
        ],
    )
    parts = [counts]
    if errors:
        parts.append(md_table(["error kind", "requests"], list(errors.items())))
    parts += [
        throughput,
        "Latencies in milliseconds, all completed requests:",
        latency_table(summary.get("full", {}), summary),
    ]
    steady = summary.get("steady") or {}
    if steady.get("ttft_s"):
        lo, hi = ([*(steady.get("window_s") or []), None, None])[:2]
        parts += [
            f"Steady state ({fmt(_r(lo))}–{fmt(_r(hi))} s; warm-up and drain left out, "
            f"{steady.get('completed')} requests):",
            latency_table(steady, steady),
        ]
    tokens = summary.get("tokens") or {}
    if tokens:
        parts.append(
            md_table(
                ["token check", "value"],
                [[k, _r(v) if isinstance(v, float) else v] for k, v in tokens.items()],
            )
        )
    return "\n\n".join(parts)


def latency_table(block: dict, lag_block: dict) -> str:
    """One row per latency metric (and schedule lag), columns mean/p50/p90/p99/max in ms."""
    rows = []
    for key, label in LATENCIES.items():
        stats = block.get(key)
        if stats and stats.get("count"):
            rows.append([label, stats["count"], *(_ms(stats.get(p)) for p in PCTS)])
    lag = lag_block.get("schedule_lag_s")
    if lag and lag.get("count"):
        rows.append(
            ["schedule lag (sent − intended)", lag["count"], *(_ms(lag.get(p)) for p in PCTS)]
        )
    return md_table(["metric", "n", *PCTS], rows)


def run_caveats(run: dict, summary: dict) -> list[str]:
    """What a reader must know before comparing these numbers with another run."""
    out = []
    model = str(run.get("model") or "")
    if model == "burstlab-instant":
        out.append(
            "The target is burstlab's instant test server: latencies measure the client and "
            "the loopback network, not an inference engine."
        )
    if "random" in model:
        out.append(
            "The model has random weights (a burstlab test engine): output lengths are forced "
            "with max_tokens/ignore_eos, and the text is meaningless."
        )
    c = summary.get("counts", {})
    if c.get("late"):
        out.append(
            f"{c['late']:,} of {c.get('issued', 0):,} requests were sent later than the "
            f"late tolerance ({(run.get('target') or {}).get('late_after_s')} s); the "
            "schedule-anchored metrics include that delay."
        )
    if c.get("dropped"):
        out.append(f"{c['dropped']:,} requests were dropped behind schedule (policy drop).")
    context = summary.get("context")
    if isinstance(context, dict) and context.get("oversized"):
        ctx = context.get("context_tokens")
        how = {"skip": "left out", "clip": "clipped to fit"}.get(str(context.get("action")))
        text = (
            f"{fmt(context['oversized'])} scheduled requests needed more than the server's "
            f"{fmt(ctx)}-token context (prompt + output tokens)"
        )
        if how:
            out.append(f"{text}; they were {how}.")
        else:
            out.append(
                f"{text} and were sent anyway: {fmt(context.get('oversized_failed'))} of them "
                f"failed and {fmt(context.get('oversized_short'))} stopped short (records: "
                "`oversized`)."
            )
    if summary.get("interrupted"):
        out.append(
            "The run was interrupted (Ctrl-C): requests in flight were recorded as cancelled."
        )
    target = str((run.get("target") or {}).get("url", ""))
    if "127.0.0.1" in target or "localhost" in target:
        out.append("Client and server ran on the same machine and share its CPU.")
    return out or ["None recorded."]


def _files_markdown(parts: list[Path]) -> str:
    return (
        f"- `data/records/*part-*.parquet`: {len(parts)} part(s), one row per request "
        "(docs/design.md §3: intended/sent/first-token/end times in run-clock seconds, every "
        "chunk's time and token count, HTTP status, errors, client and server token counts).\n"
        "- `data/run.json`: the run's configuration; `data/summary.json`: the metric dictionary "
        "(and vLLM `bench serve` key names under `vllm_bench_serve` when requested)."
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def _r(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
