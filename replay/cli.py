"""`burstlab replay`, `capacity`, `compare-load`, `calibrate`: the replay stage's commands.

The options the load commands share (target, load shaping, SLOs) are declared once in cli_common
and mean the same in each (burstlab.options); `build_config` turns them into a ReplayConfig with
`burstlab replay`'s defaults, so capacity and compare-load pass only what they expose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from burstlab.errors import UsageError
from burstlab.options import opt
from burstlab.replay.capacity import replay_probe, search_capacity
from burstlab.replay.ceiling import DEFAULT_RATES, calibrate
from burstlab.replay.cli_common import (
    DEFAULT_URL,
    ApiKeyEnv,
    Endpoint,
    Engine,
    FitContext,
    Limit,
    MaxGap,
    MaxIn,
    MaxOut,
    Model,
    Overwrite,
    Parallel,
    RayOpt,
    Slo,
    SloAnchor,
    SourceArg,
    Speedup,
    Url,
    Window,
    WorkersOpt,
    build_config,
    console,
    err,
    local_engine,
    out_folder,
    print_summary,
    read_requests,
)
from burstlab.replay.downstream import compare_loads
from burstlab.replay.downstream_cli import register as register_downstream
from burstlab.replay.peers.cli import register as register_peers
from burstlab.replay.run import replay
from burstlab.replay.summary import RunSummary


def replay_cmd(
    ctx: typer.Context,
    source: SourceArg,
    url: Url = DEFAULT_URL,
    endpoint: Endpoint = "completions",
    model: Model = None,
    window: Window = None,
    speedup: Speedup = 1.0,
    max_gap: MaxGap = None,
    limit: Limit = None,
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
    slo: Slo = None,
    slo_anchor: SloAnchor = "service",
    out: Annotated[
        Optional[Path],  # noqa: UP045
        opt("out", "the run folder (default: <data dir>/runs/replay-<UTC time>)"),
    ] = None,
    overwrite: Overwrite = False,
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
    max_input_tokens: MaxIn = None,
    max_output_tokens: MaxOut = None,
    fit_context: FitContext = "send",
    sessions: Annotated[
        bool, opt("sessions", "a later turn is sent its think time after the previous ends")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Per-request time limit, seconds.")] = 600.0,
    read_timeout: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(help="Longest silence inside a response, seconds (default: none)."),
    ] = None,
    api_key_env: ApiKeyEnv = None,
    seed: Annotated[
        Optional[int],  # noqa: UP045
        opt(
            "seed",
            "of the prompt text (default: fresh per run, so no run warms the server's prefix "
            "cache for the next)",
        ),
    ] = None,
    warmup: Annotated[
        float, typer.Option(help="Fraction of the schedule left out of steady state (start).")
    ] = 0.1,
    drain: Annotated[
        float, typer.Option(help="Fraction of the schedule left out of steady state (end).")
    ] = 0.1,
    engine: Engine = None,
    parallel: Parallel = 4,
    workers: WorkersOpt = "auto",
    ray: RayOpt = None,
) -> None:
    """Replay a trace (or synthetic workload) open-loop against an OpenAI-compatible server.

    Every request is sent at its scheduled time (absolute deadlines), streamed, and recorded
    to <out>/records/*.parquet as it finishes; <out>/summary.json holds TTFT, TPOT, ITL, E2E
    (service and schedule anchored), schedule lag, throughput and goodput; <out>/report.html
    charts them.

    Exit status: 0; 130 after Ctrl-C; 4 when a client process died (its finished requests
    are kept); 3 when the client saturated (the numbers then include its own delay).

    Example: burstlab replay azure-llm-2023-conv --url http://127.0.0.1:8080
    --window 0:600 --speedup 10 --limit 500 --slo ttft=0.5,tpot=0.05 --vllm-keys
    """
    config = build_config(
        url=url, endpoint=endpoint, model=model, window=window, speedup=speedup,
        max_gap=max_gap, limit=limit, max_concurrency=max_concurrency,
        policy=policy, late_after=late_after, slo=slo, slo_anchor=slo_anchor,
        vllm_keys=vllm_keys, tokenizer=tokenizer, probe_tokenize=probe_tokenize,
        engine_extras=engine_extras, max_input_tokens=max_input_tokens,
        max_output_tokens=max_output_tokens, fit_context=fit_context, sessions=sessions,
        timeout=timeout,
        read_timeout=read_timeout, api_key_env=api_key_env, seed=seed, warmup=warmup,
        drain=drain, source=source, workers=workers, ray=ray,
    )  # fmt: skip
    run_dir = out_folder(ctx, out, "replay", overwrite)
    requests = read_requests(ctx, source)
    with local_engine(engine, parallel, config, ctx) as (config, info):
        result = replay(requests, config, run_dir, engine_info=info, overwrite=overwrite)
    print_summary(result.metrics, run_dir)
    raise typer.Exit(run_status(result.metrics, result.interrupted))


#: Exit statuses of `burstlab replay` beyond 0, 1 (an error) and 2 (a bad option).
EXIT_SATURATED = 3
EXIT_WORKER_LOST = 4
EXIT_INTERRUPTED = 130


def run_status(summary: RunSummary, interrupted: bool) -> int:
    """Print one line per problem of a finished run and return its exit status: 130 after
    Ctrl-C, else 4 when a client process died, else 3 when the client saturated, else 0."""
    lost = summary.lost_workers()
    for w in lost:
        err.print(
            f"[bold red]error:[/] client process {w.id} {escape(w.exit)}: {w.requests:,} of "
            f"its {w.planned:,} requests finished and were kept",
            soft_wrap=True,
        )
    saturation = summary.client_saturation
    line = saturation.warning() if saturation is not None else None
    if line:
        err.print(f"[bold yellow]warning:[/] {escape(line)}", soft_wrap=True)
    if interrupted:
        console.print("[yellow]interrupted: records of every finished request were kept[/]")
        return EXIT_INTERRUPTED
    if lost:
        return EXIT_WORKER_LOST
    return EXIT_SATURATED if summary.client_saturated else 0


def capacity_cmd(
    ctx: typer.Context,
    source: SourceArg,
    slo: Annotated[str, opt("slo", "required: the search keeps attainment of these")],
    url: Url = DEFAULT_URL,
    endpoint: Endpoint = "completions",
    model: Model = None,
    window: Window = None,
    speedup: Annotated[float, opt("speedup", "the first probe; the search moves it")] = 1.0,
    max_gap: MaxGap = None,
    limit: Annotated[Optional[int], opt("limit", "per probe")] = None,  # noqa: UP045
    slo_anchor: SloAnchor = "service",
    target: Annotated[float, typer.Option(help="SLO attainment a probe must reach.")] = 0.9,
    tolerance: Annotated[
        float, typer.Option(help="Stop when the passing and failing speedups are this close.")
    ] = 0.1,
    max_probes: Annotated[int, typer.Option(help="Most probes to run.")] = 10,
    max_input_tokens: MaxIn = None,
    max_output_tokens: MaxOut = None,
    fit_context: FitContext = "send",
    api_key_env: ApiKeyEnv = None,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        opt("out", "the search folder (default: <data dir>/runs/capacity-<UTC time>)"),
    ] = None,
    overwrite: Overwrite = False,
    engine: Engine = None,
    parallel: Parallel = 4,
    workers: WorkersOpt = "auto",
    ray: RayOpt = None,
) -> None:
    """Find the highest speedup whose SLO attainment stays ≥ --target (bracket + bisect).

    Each probe is a full replay kept in <out>/probe-NN-xSPEEDUP; <out>/capacity.json and
    <out>/report.html show goodput and attainment against offered load.

    Example: burstlab capacity azure-llm-2023-conv --url http://127.0.0.1:8080
    --slo ttft=0.5,tpot=0.05 --window 0:300 --speedup 10 --limit 200
    """
    config = build_config(
        url=url, endpoint=endpoint, model=model, window=window, speedup=speedup,
        max_gap=max_gap, limit=limit, slo=slo, slo_anchor=slo_anchor,
        max_input_tokens=max_input_tokens, max_output_tokens=max_output_tokens,
        fit_context=fit_context, api_key_env=api_key_env, source=source, workers=workers,
        ray=ray,
    )  # fmt: skip
    folder = out_folder(ctx, out, "capacity", overwrite)
    requests = read_requests(ctx, source)
    with local_engine(engine, parallel, config, ctx) as (config, _):
        result = search_capacity(
            replay_probe(requests, config), folder, target=target, first=speedup,
            tolerance=tolerance, max_probes=max_probes,
            on_probe=lambda r: console.print(
                f"probe {r['probe']}: speedup ×{r['speedup']:.4g} "
                f"({r['offered_rps'] or 0:.2f} req/s) attainment {r['attainment']:.3f} "
                f"{'pass' if r['passed'] else 'FAIL'}"
            ),
        )  # fmt: skip
    console.print(result.summary().renderable())
    console.print(f"saved {folder / 'capacity.json'}, {folder / 'report.html'}")


def compare_load_cmd(
    ctx: typer.Context,
    real: Annotated[str, typer.Argument(help="The real requests (Parquet file or dataset id).")],
    synthetic: Annotated[str, typer.Argument(help="The synthetic requests (Parquet file).")],
    url: Url = DEFAULT_URL,
    endpoint: Endpoint = "completions",
    model: Model = None,
    window: Annotated[Optional[str], opt("window", "of both loads")] = None,  # noqa: UP045
    speedup: Speedup = 1.0,
    max_gap: MaxGap = None,
    limit: Annotated[Optional[int], opt("limit", "per load")] = None,  # noqa: UP045
    slo: Slo = None,
    slo_anchor: SloAnchor = "service",
    max_input_tokens: MaxIn = None,
    max_output_tokens: MaxOut = None,
    fit_context: FitContext = "send",
    api_key_env: ApiKeyEnv = None,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        opt("out", "the comparison folder (default: <data dir>/runs/compare-load-<UTC time>)"),
    ] = None,
    overwrite: Overwrite = False,
    engine: Engine = None,
    parallel: Parallel = 4,
    workers: WorkersOpt = "auto",
    ray: RayOpt = None,
) -> None:
    """Downstream fidelity: replay a real and a synthetic load against the same server and
    compare p99 E2E, p99 TTFT and goodput (synthetic ÷ real near 1 = a faithful load).

    Runs land in <out>/real and <out>/synthetic; <out>/comparison.json holds the table.

    Example: burstlab compare-load azure-llm-2023-conv synth.parquet --engine tiny
    --window 0:120 --speedup 2 --max-output-tokens 32 --slo ttft=0.5,tpot=0.05
    """
    config = build_config(
        url=url, endpoint=endpoint, model=model, window=window, speedup=speedup,
        max_gap=max_gap, limit=limit, slo=slo, slo_anchor=slo_anchor,
        max_input_tokens=max_input_tokens, max_output_tokens=max_output_tokens,
        fit_context=fit_context, api_key_env=api_key_env, source=real, workers=workers,
        ray=ray,
    )  # fmt: skip
    folder = out_folder(ctx, out, "compare-load", overwrite)
    real_frame, synthetic_frame = read_requests(ctx, real), read_requests(ctx, synthetic)
    with local_engine(engine, parallel, config, ctx) as (config, info):
        result = compare_loads(
            real_frame, synthetic_frame, config, folder, engine_info=info, overwrite=overwrite
        )
    console.print(result.summary().renderable())
    console.print(f"runs: {result.runs['real']}, {result.runs['synthetic']}")


def calibrate_cmd(
    ctx: typer.Context,
    rates: Annotated[
        str, typer.Option(help="Offered rates to try, requests/s, comma-separated.")
    ] = ",".join(f"{r:g}" for r in DEFAULT_RATES),
    lag_bound: Annotated[
        float, typer.Option(help="Bound on the p99 schedule lag, seconds.")
    ] = 0.002,
    duration: Annotated[float, opt("duration", "per rate")] = 3.0,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        opt(
            "out",
            "the folder for calibration.json (default: <data dir>/runs/calibration-<UTC time>)",
        ),
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Measure this client's own ceiling: the highest rate it sends on schedule.

    Replays evenly spaced loads at increasing rates against the built-in instant server (its
    own process, never the bottleneck) and reports delivered/offered and schedule lag per rate.

    Example: burstlab calibrate --rates 500,1000,2000 --duration 3
    """
    try:
        steps = [float(r) for r in rates.split(",") if r.strip()]
    except ValueError:
        raise UsageError(
            f"expected comma-separated requests/s, found {rates!r}", param="rates"
        ) from None
    folder = out_folder(ctx, out, "calibration", overwrite)
    console.print(f"calibrating: {len(steps)} rates × {duration:g} s against the instant server …")
    result = calibrate(
        steps, duration_s=duration, lag_bound_s=lag_bound, out=folder,
        on_step=lambda r: console.print(
            f"  {r['offered_rps']:.0f} req/s → delivered {r['delivered_ratio']:.3f}, "
            f"lag p99 {r['lag_p99_ms']:.2f} ms"
        ),
    )  # fmt: skip
    console.print(result.summary().renderable())
    console.print(f"saved {folder / 'calibration.json'}")


def register(app: typer.Typer) -> None:
    """Add `replay`, `capacity`, `compare-load` and `calibrate`."""
    app.command("replay")(replay_cmd)
    app.command("capacity")(capacity_cmd)
    app.command("compare-load")(compare_load_cmd)
    app.command("calibrate")(calibrate_cmd)
    # imported here, not at the top: downstream_cli reuses this module's helpers (build_config …)

    register_downstream(app)  # downstream
    register_peers(app)  # export, import-run
