"""`burstlab replay`, `burstlab capacity` (and `burstlab engine`, from engine_cli)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from burstlab.console import console as make_console
from burstlab.errors import ReplayError

console = make_console()

Url = Annotated[
    str, typer.Option("--url", help="Base URL of the OpenAI-compatible server (no /v1 suffix).")
]


def _window(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    lo, _, hi = text.partition(":")
    try:
        return (float(lo or 0.0), float(hi) if hi else float("inf"))
    except ValueError:
        raise ReplayError(
            f"--window: expected START:END in trace seconds, found {text!r}"
        ) from None


def _default_out(ctx: typer.Context, kind: str) -> Path:
    from burstlab.paths import data_dir

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return data_dir((ctx.obj or {}).get("data_dir")) / "runs" / f"{kind}-{stamp}"


def _api_key(env: str | None) -> str | None:
    if not env:
        return None
    key = os.environ.get(env)
    if not key:
        raise ReplayError(f"--api-key-env: environment variable {env} is not set")
    return key


def _ms(v) -> str:
    return "–" if v is None else f"{v * 1000:.1f}"


def print_summary(summary: dict, run_dir: Path) -> None:
    """A compact table of the run's headline numbers (ms for latencies)."""
    c = summary["counts"]
    table = Table(title=f"replay {run_dir}", show_header=True)
    table.add_column("metric")
    for col in ("mean", "p50", "p90", "p99", "max"):
        table.add_column(col, justify="right")
    for label, key, block in (
        ("TTFT (ms)", "ttft_s", summary["full"]),
        ("TTFT sched (ms)", "ttft_sched_s", summary["full"]),
        ("TPOT (ms)", "tpot_s", summary["full"]),
        ("ITL (ms)", "itl_s", summary["full"]),
        ("E2E (ms)", "e2e_s", summary["full"]),
        ("E2E sched (ms)", "e2e_sched_s", summary["full"]),
        ("schedule lag (ms)", None, summary),
    ):
        d = block[key] if key else block["schedule_lag_s"]
        table.add_row(label, *(_ms(d[k]) for k in ("mean", "p50", "p90", "p99", "max")))
    console.print(table)
    rate = summary["request_throughput_rps"] or 0.0
    tps = summary["output_throughput_tps"] or 0.0
    console.print(
        f"requests: {c['scheduled']} scheduled, {c['issued']} issued, {c['completed']} ok, "
        f"{c['failed']} failed{' ' + str(c['errors_by_kind']) if c['failed'] else ''}, "
        f"{c['dropped']} dropped, "
        f"{c['late']} late; {rate:.2f} req/s, {tps:.1f} output tok/s over "
        f"{summary['duration_s']:.2f} s"
    )
    gp = summary.get("goodput")
    if gp:
        console.print(
            f"goodput ({gp['slo']['anchor']}-anchored): attainment {gp['attainment']:.3f}, "
            f"{gp['goodput_rps']:.2f} good req/s, {gp['goodput_output_tps']:.1f} good tok/s, "
            f"pass rates {gp['pass_rate']}"
        )
    console.print(f"records: {run_dir / 'records'}  summary: {run_dir / 'summary.json'}")
    if (run_dir / "report.html").exists():
        console.print(f"report: {run_dir / 'report.html'}")


def register(app: typer.Typer) -> None:
    """Add `replay`, `capacity` and `compare-load`."""

    @app.command("replay")
    def replay_cmd(
        ctx: typer.Context,
        source: Annotated[
            Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
            typer.Argument(
                help="A requests Parquet file, an ingested source or a shipped sample "
                "(e.g. azure-llm-2023-conv). Not needed with --calibrate."
            ),
        ] = None,
        url: Url = "http://127.0.0.1:8080",
        endpoint: Annotated[
            str, typer.Option(help="completions (/v1/completions) or chat (/v1/chat/completions).")
        ] = "completions",
        model: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(
                help="Model name to send (default: the first of the server's /v1/models)."
            ),
        ] = None,
        window: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="START:END in trace seconds, e.g. 0:600."),
        ] = None,
        time_scale: Annotated[
            float, typer.Option(help="Multiply every trace duration by this (0.1 = 10× faster).")
        ] = 1.0,
        rate_scale: Annotated[float, typer.Option(help="Multiply the request rate by this.")] = 1.0,
        max_gap: Annotated[
            Optional[float],  # noqa: UP045
            typer.Option(help="Cap idle gaps between sends at this many seconds (after scaling)."),
        ] = None,
        limit: Annotated[
            Optional[int],  # noqa: UP045
            typer.Option(help="Send at most this many requests (the earliest)."),
        ] = None,
        max_concurrency: Annotated[
            Optional[int],  # noqa: UP045
            typer.Option(
                help="At most N requests open at once; the queueing shows in *_sched metrics."
            ),
        ] = None,
        policy: Annotated[
            str, typer.Option(help="Behind schedule: send-late (default) or drop.")
        ] = "send-late",
        late_after: Annotated[
            float, typer.Option(help="Seconds behind schedule that count as late (and drop).")
        ] = 0.005,
        slo: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="Goodput SLOs in seconds, e.g. ttft=0.5,tpot=0.05,e2e=10."),
        ] = None,
        slo_anchor: Annotated[
            str, typer.Option(help="service (from the send) or schedule (from intended time).")
        ] = "service",
        out: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option(help="Run directory (default: <data dir>/runs/replay-<UTC time>)."),
        ] = None,
        vllm_keys: Annotated[
            bool, typer.Option("--vllm-keys", help="Also write vLLM `bench serve` key names.")
        ] = False,
        tokenizer: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option(help="Hugging Face tokenizer.json for exact prompt lengths."),
        ] = None,
        probe_tokenize: Annotated[
            bool,
            typer.Option(help="Use the server's /tokenize and measure its prompt overhead."),
        ] = True,
        engine_extras: Annotated[
            bool, typer.Option(help="Send ignore_eos and min_tokens so output lengths are exact.")
        ] = True,
        max_input_tokens: Annotated[
            Optional[int],  # noqa: UP045
            typer.Option(help="Clip prompt lengths to this many tokens."),
        ] = None,
        max_output_tokens: Annotated[
            Optional[int],  # noqa: UP045
            typer.Option(help="Clip output lengths to this many tokens."),
        ] = None,
        sessions: Annotated[
            bool, typer.Option(help="Send later conversation turns think-time after the last.")
        ] = True,
        timeout: Annotated[float, typer.Option(help="Per-request time limit, seconds.")] = 600.0,
        read_timeout: Annotated[
            Optional[float],  # noqa: UP045
            typer.Option(help="Longest silence inside a response, seconds (default: none)."),
        ] = None,
        api_key_env: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="Name of the environment variable holding the API key."),
        ] = None,
        seed: Annotated[
            Optional[int],  # noqa: UP045
            typer.Option(
                help="Seed of the prompt text (default: fresh per run, so no run warms the "
                "server's prefix cache for the next)."
            ),
        ] = None,
        warmup: Annotated[
            float, typer.Option(help="Fraction of the schedule left out of steady state (start).")
        ] = 0.1,
        drain: Annotated[
            float, typer.Option(help="Fraction of the schedule left out of steady state (end).")
        ] = 0.1,
        report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace a run already in --out.")
        ] = False,
        engine: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(
                help="Start a local llama.cpp engine with a random-weight model of this size "
                "(tiny|small|medium) on 127.0.0.1 for this run and replay against it "
                "(--url is ignored; lengths are clipped to its context unless set)."
            ),
        ] = None,
        engine_parallel: Annotated[
            int, typer.Option(help="--engine: parallel slots (continuous batching).")
        ] = 4,
        calibrate: Annotated[
            bool,
            typer.Option(
                "--calibrate",
                help="Measure this client's own ceiling against the built-in instant server.",
            ),
        ] = False,
        rates: Annotated[
            str, typer.Option(help="--calibrate: offered rates to try, req/s, comma-separated.")
        ] = "250,500,1000,1500,2000,3000,4000",
        lag_bound: Annotated[
            float, typer.Option(help="--calibrate: p99 schedule-lag bound, seconds.")
        ] = 0.002,
        calibrate_duration: Annotated[
            float, typer.Option(help="--calibrate: seconds per rate step.")
        ] = 3.0,
    ) -> None:
        """Replay a trace (or synthetic workload) open-loop against an OpenAI-compatible server.

        Every request is sent at its scheduled time (absolute deadlines), streamed, and recorded
        to <out>/records/*.parquet as it finishes; <out>/summary.json holds TTFT, TPOT, ITL, E2E
        (service and schedule anchored), schedule lag, throughput and goodput.

        Example: burstlab replay azure-llm-2023-conv --url http://127.0.0.1:8080
        --window 0:600 --time-scale 0.1 --limit 500 --slo ttft=0.5,tpot=0.05 --vllm-keys
        """
        if calibrate:
            _calibrate(ctx, rates, lag_bound, calibrate_duration, out)
            return
        if not source:
            raise ReplayError(
                "replay needs a SOURCE (a Parquet file or a source name), or --calibrate"
            )
        config = _config(
            url=url, endpoint=endpoint, model=model, window=window, time_scale=time_scale,
            rate_scale=rate_scale, max_gap=max_gap, limit=limit, max_concurrency=max_concurrency,
            policy=policy, late_after=late_after, slo=slo, slo_anchor=slo_anchor,
            vllm_keys=vllm_keys, tokenizer=tokenizer, probe_tokenize=probe_tokenize,
            engine_extras=engine_extras, max_input_tokens=max_input_tokens,
            max_output_tokens=max_output_tokens, sessions=sessions, timeout=timeout,
            read_timeout=read_timeout, api_key_env=api_key_env, seed=seed, warmup=warmup, drain=drain, report=report,
            source=source,
        )  # fmt: skip
        from burstlab.replay.run import load_requests, replay

        requests = load_requests(source, (ctx.obj or {}).get("data_dir"))
        run_dir = out or _default_out(ctx, "replay")
        with local_engine(engine, engine_parallel, config, ctx) as (config, info):
            result = replay(requests, config, run_dir, engine_info=info, overwrite=overwrite)
        print_summary(result.summary, run_dir)
        if result.interrupted:
            console.print("[yellow]interrupted: records of every finished request were kept[/]")
            raise typer.Exit(130)

    @app.command("capacity")
    def capacity_cmd(
        ctx: typer.Context,
        source: Annotated[str, typer.Argument(help="A requests Parquet file or source name.")],
        slo: Annotated[
            str, typer.Option(help="SLOs in seconds, e.g. ttft=0.5,tpot=0.05,e2e=10 (required).")
        ],
        url: Url = "http://127.0.0.1:8080",
        endpoint: Annotated[str, typer.Option(help="completions or chat.")] = "completions",
        model: Annotated[Optional[str], typer.Option(help="Model name to send.")] = None,  # noqa: UP045
        window: Annotated[Optional[str], typer.Option(help="START:END trace seconds.")] = None,  # noqa: UP045
        time_scale: Annotated[float, typer.Option(help="Multiply trace durations.")] = 1.0,
        max_gap: Annotated[Optional[float], typer.Option(help="Cap idle gaps (s).")] = None,  # noqa: UP045
        limit: Annotated[Optional[int], typer.Option(help="Requests per probe.")] = None,  # noqa: UP045
        slo_anchor: Annotated[str, typer.Option(help="service or schedule.")] = "service",
        target: Annotated[float, typer.Option(help="Attainment a probe must reach.")] = 0.9,
        start: Annotated[float, typer.Option(help="First rate scale to probe.")] = 1.0,
        tolerance: Annotated[float, typer.Option(help="Stop when bounds are this close.")] = 0.1,
        max_probes: Annotated[int, typer.Option(help="Most probes to run.")] = 10,
        max_input_tokens: Annotated[Optional[int], typer.Option(help="Clip prompts.")] = None,  # noqa: UP045
        max_output_tokens: Annotated[Optional[int], typer.Option(help="Clip outputs.")] = None,  # noqa: UP045
        api_key_env: Annotated[Optional[str], typer.Option(help="API key env var.")] = None,  # noqa: UP045
        out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None,  # noqa: UP045
        engine: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="Search against a local llama.cpp engine of this size (tiny…)."),
        ] = None,
        engine_parallel: Annotated[int, typer.Option(help="--engine: parallel slots.")] = 4,
    ) -> None:
        """Find the highest rate scale whose SLO attainment stays ≥ --target (bracket + bisect).

        Each probe is a full replay kept in <out>/probe-NN-xSCALE; <out>/capacity.json and
        <out>/report.html show goodput and attainment against offered load.

        Example: burstlab capacity azure-llm-2023-conv --url http://127.0.0.1:8080
        --slo ttft=0.5,tpot=0.05 --window 0:300 --time-scale 0.1 --limit 200
        """
        from burstlab.replay.capacity import replay_probe, search_capacity
        from burstlab.replay.run import load_requests

        config = _config(
            url=url, endpoint=endpoint, model=model, window=window, time_scale=time_scale,
            max_gap=max_gap, limit=limit, slo=slo, slo_anchor=slo_anchor,
            max_input_tokens=max_input_tokens, max_output_tokens=max_output_tokens,
            api_key_env=api_key_env, source=source,
        )  # fmt: skip
        requests = load_requests(source, (ctx.obj or {}).get("data_dir"))
        folder = out or _default_out(ctx, "capacity")
        with local_engine(engine, engine_parallel, config, ctx) as (config, _):
            result = search_capacity(
                replay_probe(requests, config), folder, target=target, start=start,
                tolerance=tolerance, max_probes=max_probes,
                on_probe=lambda r: console.print(
                    f"probe {r['probe']}: x{r['rate_scale']:.4g} "
                    f"({r['offered_rps'] or 0:.2f} req/s) attainment {r['attainment']:.3f} "
                    f"{'pass' if r['passed'] else 'FAIL'}"
                ),
            )  # fmt: skip
        console.print(
            f"capacity: rate scale {result.best_scale} "
            f"({result.best_offered_rps or 0:.2f} req/s) at attainment ≥ {target}; "
            f"{folder / 'capacity.json'}, {folder / 'report.html'}"
        )

    @app.command("compare-load")
    def compare_load_cmd(
        ctx: typer.Context,
        real: Annotated[str, typer.Argument(help="The real requests (Parquet file or source).")],
        synthetic: Annotated[str, typer.Argument(help="The synthetic requests (Parquet file).")],
        url: Url = "http://127.0.0.1:8080",
        endpoint: Annotated[str, typer.Option(help="completions or chat.")] = "completions",
        model: Annotated[Optional[str], typer.Option(help="Model name to send.")] = None,  # noqa: UP045
        window: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="START:END trace seconds, both loads."),
        ] = None,
        time_scale: Annotated[float, typer.Option(help="Multiply trace durations.")] = 1.0,
        max_gap: Annotated[Optional[float], typer.Option(help="Cap idle gaps (s).")] = None,  # noqa: UP045
        limit: Annotated[Optional[int], typer.Option(help="Requests per load.")] = None,  # noqa: UP045
        slo: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="SLOs in seconds, e.g. ttft=0.5,tpot=0.05."),
        ] = None,
        slo_anchor: Annotated[str, typer.Option(help="service or schedule.")] = "service",
        max_input_tokens: Annotated[Optional[int], typer.Option(help="Clip prompts.")] = None,  # noqa: UP045
        max_output_tokens: Annotated[Optional[int], typer.Option(help="Clip outputs.")] = None,  # noqa: UP045
        api_key_env: Annotated[Optional[str], typer.Option(help="API key env var.")] = None,  # noqa: UP045
        out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None,  # noqa: UP045
        overwrite: Annotated[bool, typer.Option(help="Replace runs already in --out.")] = False,
        engine: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="Compare on a local llama.cpp engine of this size (tiny…)."),
        ] = None,
        engine_parallel: Annotated[int, typer.Option(help="--engine: parallel slots.")] = 4,
    ) -> None:
        """Downstream fidelity: replay a real and a synthetic load against the same server and
        compare p99 E2E, p99 TTFT and goodput (synthetic ÷ real near 1 = a faithful load).

        Runs land in <out>/real and <out>/synthetic; <out>/comparison.json holds the table.

        Example: burstlab compare-load azure-llm-2023-conv synth.parquet --engine tiny
        --window 0:120 --time-scale 0.5 --max-output-tokens 32 --slo ttft=0.5,tpot=0.05
        """
        import json

        from burstlab.replay.downstream import compare_loads
        from burstlab.replay.run import load_requests

        config = _config(
            url=url, endpoint=endpoint, model=model, window=window, time_scale=time_scale,
            max_gap=max_gap, limit=limit, slo=slo, slo_anchor=slo_anchor,
            max_input_tokens=max_input_tokens, max_output_tokens=max_output_tokens,
            api_key_env=api_key_env, source=real,
        )  # fmt: skip
        data_dir = (ctx.obj or {}).get("data_dir")
        frames = [load_requests(real, data_dir), load_requests(synthetic, data_dir)]
        folder = out or _default_out(ctx, "compare-load")
        with local_engine(engine, engine_parallel, config, ctx) as (config, info):
            result = compare_loads(*frames, config, folder, engine_info=info, overwrite=overwrite)
        (Path(folder) / "comparison.json").write_text(
            json.dumps({"loads": result.table.to_dicts(), "ratios": result.ratios}, indent=2)
        )
        table = Table(title=None)
        for col in result.table.columns:
            table.add_column(col)
        for row in result.table.iter_rows():
            table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
        console.print(table)
        ratios = ", ".join(f"{k} {v:.3g}" for k, v in result.ratios.items() if v is not None)
        console.print(f"synthetic ÷ real: {ratios}")
        console.print(f"runs: {result.runs['real']}, {result.runs['synthetic']}")


@contextlib.contextmanager
def local_engine(size: str | None, parallel: int, config, ctx: typer.Context, ctx_per_slot=2048):
    """With a size: start llama.cpp on 127.0.0.1, point `config` at it, stop it afterwards."""
    if not size:
        yield config, None
        return
    from burstlab.engines import local

    sched = config.schedule
    max_out = sched.max_output_tokens or 256
    max_in = sched.max_input_tokens or ctx_per_slot - max_out - 16
    if max_in + max_out > ctx_per_slot:
        raise ReplayError(
            f"--engine: input + output tokens ({max_in} + {max_out}) exceed the engine's "
            f"{ctx_per_slot}-token slots; lower --max-input-tokens / --max-output-tokens"
        )
    console.print(f"starting a local llama.cpp engine ({size}, {parallel} slots) …")
    with local(
        size, parallel=parallel, ctx_per_slot=ctx_per_slot,
        data_dir=(ctx.obj or {}).get("data_dir"),
    ) as handle:  # fmt: skip
        console.print(f"engine ready at {handle.base_url} in {handle.started_in_s:.1f} s")
        yield (
            dataclasses.replace(
                config,
                client=dataclasses.replace(config.client, url=handle.base_url),
                schedule=dataclasses.replace(
                    sched, max_input_tokens=max_in, max_output_tokens=max_out
                ),
                model=handle.model,
            ),
            handle.info(),
        )


def _config(
    *,
    url: str,
    source: str,
    endpoint: str = "completions",
    model: str | None = None,
    window: str | None = None,
    time_scale: float = 1.0,
    rate_scale: float = 1.0,
    max_gap: float | None = None,
    limit: int | None = None,
    max_concurrency: int | None = None,
    policy: str = "send-late",
    late_after: float = 0.005,
    slo: str | None = None,
    slo_anchor: str = "service",
    vllm_keys: bool = False,
    tokenizer: Path | None = None,
    probe_tokenize: bool = True,
    engine_extras: bool = True,
    max_input_tokens: int | None = None,
    max_output_tokens: int | None = None,
    sessions: bool = True,
    timeout: float = 600.0,
    read_timeout: float | None = None,
    api_key_env: str | None = None,
    seed: int | None = None,
    warmup: float = 0.1,
    drain: float = 0.1,
    report: bool = True,
):
    """A ReplayConfig from CLI options; the defaults are `burstlab replay`'s, so capacity and
    compare-load pass only the options they expose."""
    o = locals()
    from burstlab.replay.client import ClientOptions
    from burstlab.replay.goodput import parse_slo
    from burstlab.replay.run import ReplayConfig
    from burstlab.replay.schedule import ScheduleOptions

    if o["endpoint"] not in ("completions", "chat"):
        raise ReplayError(f"--endpoint: expected completions or chat, found {o['endpoint']!r}")
    if o["policy"] not in ("send-late", "drop"):
        raise ReplayError(f"--policy: expected send-late or drop, found {o['policy']!r}")
    return ReplayConfig(
        client=ClientOptions(
            url=o["url"], endpoint=o["endpoint"], policy=o["policy"], late_after_s=o["late_after"],
            max_concurrency=o["max_concurrency"], timeout_s=o["timeout"],
            read_timeout_s=o["read_timeout"],
            api_key=_api_key(o["api_key_env"]),
        ),
        schedule=ScheduleOptions(
            window=_window(o["window"]), time_scale=o["time_scale"], rate_scale=o["rate_scale"],
            max_gap=o["max_gap"], limit=o["limit"], sessions=o["sessions"],
            max_input_tokens=o["max_input_tokens"], max_output_tokens=o["max_output_tokens"],
        ),
        model=o["model"], tokenizer=str(o["tokenizer"]) if o["tokenizer"] else None,
        probe_tokenize=o["probe_tokenize"], engine_extras=o["engine_extras"], seed=o["seed"],
        slo=parse_slo(o["slo"], o["slo_anchor"]), warmup=o["warmup"], drain=o["drain"],
        vllm_keys=o["vllm_keys"], report=o["report"], source=o["source"],
    )  # fmt: skip


def _calibrate(ctx: typer.Context, rates: str, lag_bound: float, duration: float, out) -> None:
    from burstlab.replay.ceiling import calibrate

    try:
        steps = [float(r) for r in rates.split(",") if r.strip()]
    except ValueError:
        raise ReplayError(f"--rates: expected comma-separated req/s, found {rates!r}") from None
    table = Table(title="client calibration against the instant server")
    for col in ("offered req/s", "delivered req/s", "delivered/offered", "lag p50 ms",
                "lag p99 ms", "lag max ms", "errors"):  # fmt: skip
        table.add_column(col, justify="right")
    console.print(f"calibrating: {len(steps)} rates × {duration:g} s against the instant server …")
    result = calibrate(
        steps, duration_s=duration, lag_bound_s=lag_bound,
        on_step=lambda r: console.print(
            f"  {r['offered_rps']:.0f} req/s → delivered {r['delivered_ratio']:.3f}, "
            f"lag p99 {r['lag_p99_ms']:.2f} ms"
        ),
    )  # fmt: skip
    for r in result.table.iter_rows(named=True):
        table.add_row(
            f"{r['offered_rps']:.0f}", f"{r['delivered_rps']:.0f}", f"{r['delivered_ratio']:.3f}",
            f"{r['lag_p50_ms']:.2f}", f"{r['lag_p99_ms']:.2f}", f"{r['lag_max_ms']:.2f}",
            str(r["errors"]),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"client ceiling: {result.ceiling_rps or 'below the lowest rate tried'} req/s "
        f"(p99 lag ≤ {lag_bound * 1000:g} ms and delivered/offered ≥ {result.min_delivered})"
    )
    folder = out or _default_out(ctx, "calibration")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "calibration.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    console.print(f"saved {folder / 'calibration.json'}")
