"""`burstlab replay`, `capacity`, `compare-load`, `calibrate`: the replay stage's commands.

The options the three load commands share (target, load shaping, SLOs) are declared once below
and mean the same in each (burstlab.options); `_config` turns them into a ReplayConfig with
`burstlab replay`'s defaults, so capacity and compare-load pass only what they expose.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import polars as pl
import typer
from rich.markup import escape

from burstlab import engines, traces
from burstlab.atomic import check_out
from burstlab.console import console as make_console
from burstlab.errors import InputError, UsageError
from burstlab.options import opt
from burstlab.params import parse_window
from burstlab.paths import data_dir as resolve_data_dir
from burstlab.replay.capacity import replay_probe, search_capacity
from burstlab.replay.ceiling import DEFAULT_RATES, calibrate
from burstlab.replay.client import ClientOptions
from burstlab.replay.downstream import compare_loads
from burstlab.replay.goodput import parse_slo
from burstlab.replay.run import ReplayConfig, check_config, replay, target_engine
from burstlab.replay.schedule import FIT_CONTEXT, ScheduleOptions
from burstlab.replay.summary import ContextFit, RunSummary

console = make_console()
err = make_console(stderr=True)

# -- the options the load commands share (one declaration, one meaning) ----------------------
Url = Annotated[str, opt("url")]
Endpoint = Annotated[str, opt("endpoint")]
Model = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
    opt("model", "default: the first of the server's /v1/models"),
]
Window = Annotated[Optional[str], opt("window")]  # noqa: UP045
Speedup = Annotated[float, opt("speedup")]
MaxGap = Annotated[Optional[float], opt("max-gap")]  # noqa: UP045
Limit = Annotated[Optional[int], opt("limit")]  # noqa: UP045
Slo = Annotated[Optional[str], opt("slo")]  # noqa: UP045
SloAnchor = Annotated[str, opt("slo-anchor")]
MaxIn = Annotated[Optional[int], opt("max-input-tokens")]  # noqa: UP045
MaxOut = Annotated[Optional[int], opt("max-output-tokens")]  # noqa: UP045
FitContext = Annotated[str, opt("fit-context", "default: send")]
ApiKeyEnv = Annotated[Optional[str], opt("api-key-env")]  # noqa: UP045
Engine = Annotated[
    Optional[str],  # noqa: UP045
    opt("engine", "--url is then ignored, and lengths are clipped to its slots"),
]
Parallel = Annotated[int, opt("parallel")]
Overwrite = Annotated[bool, opt("overwrite")]
SourceArg = Annotated[
    str,
    typer.Argument(
        help="A requests Parquet file (synthetic too), an ingested dataset id or a shipped "
        "sample (e.g. azure-llm-2023-conv)."
    ),
]
DEFAULT_URL = "http://127.0.0.1:8080"


def _data_dir(ctx: typer.Context) -> Path | None:
    return (ctx.obj or {}).get("data_dir")


def _out(ctx: typer.Context, out: Path | None, kind: str, overwrite: bool) -> Path:
    """--out, or a fresh `<data dir>/runs/<kind>-<UTC time>` folder; checked before any work."""
    if out is None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = resolve_data_dir(_data_dir(ctx)) / "runs" / f"{kind}-{stamp}"
    return check_out(out, overwrite=overwrite)


def _requests(ctx: typer.Context, source: str) -> pl.DataFrame:
    """The requests table SOURCE names; InputError (one line) saying what SOURCE is instead when
    it is a folder, a spec, a CSV or a file Parquet cannot read."""
    try:
        lazy = traces.scan(source, _data_dir(ctx))
    except InputError:
        _not_requests(Path(source))
        raise
    try:
        return lazy.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(source, f"cannot be read as a Parquet requests table ({first})") from None


#: What SOURCE may be, for the errors that say it is something else.
_SOURCE_KINDS = "a requests Parquet file, an ingested dataset id or a shipped sample"


def _not_requests(path: Path) -> None:
    """InputError naming what `path` is, when it is a folder or a file that is no Parquet file
    (`traces.scan` then took it for a dataset id); returns when `path` is neither."""
    if path.is_dir():
        raise InputError(path, "is a folder, not a requests table", expected=_SOURCE_KINDS)
    if not path.is_file():
        return
    if path.suffix == ".json" and _is_spec(path):
        raise InputError(
            path,
            "is a workload spec, not a requests table; generate requests from it first "
            "(burstlab synth)",
        )
    name = path.name.lower()
    kind = "a CSV file" if name.endswith((".csv", ".tsv", ".csv.gz")) else "not a Parquet file"
    raise InputError(
        path,
        f"{kind}, not a canonical requests table; ingest a raw trace first (burstlab ingest)",
        expected=_SOURCE_KINDS,
    )


def _is_spec(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as fh:
            return '"burstlab_spec"' in fh.read(1 << 16)
    except (OSError, UnicodeDecodeError):
        return False


def _option(param: str) -> str:
    """A ReplayConfig parameter as the option these commands take (``--max-input-tokens``)."""
    return "--" + param.replace("_", "-")


def _context_warner() -> Callable[[ContextFit], None]:
    """`ReplayConfig.on_context` for the CLI: before a run, one line on stderr says how many
    requests do not fit the server's context (once per command: capacity probes repeat it)."""
    said: set[str] = set()

    def warn(fit: ContextFit) -> None:
        text = fit.warning(_option)
        if text and text not in said:
            said.add(text)
            err.print(f"[bold yellow]warning:[/] {escape(text)}", soft_wrap=True)

    return warn


#: ClientOptions fields that the CLI takes under other names.
_CLI_PARAMS = {
    "timeout_s": "timeout",
    "read_timeout_s": "read_timeout",
    "late_after_s": "late_after",
}


def _api_key(env: str | None) -> str | None:
    if not env:
        return None
    key = os.environ.get(env)
    if not key:
        raise UsageError(f"environment variable {env} is not set", param="api_key_env")
    return key


def _ms(v: Any) -> str:
    return "–" if v is None else f"{v * 1000:.1f}"


def print_summary(summary: RunSummary, run_dir: Path) -> None:
    """The run's summary (what `RunResult.summary()` shows) and where its files are."""
    console.print(summary.summary().renderable())
    console.print(f"records: {run_dir / 'records'}  summary: {run_dir / 'summary.json'}")
    if (run_dir / "report.html").exists():
        console.print(f"report: {run_dir / 'report.html'}")


@contextlib.contextmanager
def _local_engine(
    size: str | None, parallel: int, config: ReplayConfig, ctx: typer.Context
) -> Iterator[tuple[ReplayConfig, dict | None]]:
    """With a size: start llama.cpp on 127.0.0.1, point `config` at it, stop it afterwards."""
    if not size:
        yield config, None
        return
    console.print(f"starting a local llama.cpp engine ({size}, {parallel} slots) …")
    with engines.local(size, parallel=parallel, data_dir=_data_dir(ctx)) as handle:
        config = target_engine(config, handle)
        console.print(f"engine ready at {handle.base_url} in {handle.started_in_s:.1f} s")
        yield config, handle.info()


def _config(
    *,
    url: str,
    source: str,
    endpoint: str = "completions",
    model: str | None = None,
    window: str | None = None,
    speedup: float = 1.0,
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
    fit_context: str = "send",
    timeout: float = 600.0,
    read_timeout: float | None = None,
    api_key_env: str | None = None,
    seed: int | None = None,
    warmup: float = 0.1,
    drain: float = 0.1,
) -> ReplayConfig:
    """A ReplayConfig from CLI options; the defaults are `burstlab replay`'s."""
    if endpoint not in ("completions", "chat"):
        raise UsageError(f"expected completions or chat, found {endpoint!r}", param="endpoint")
    if policy not in ("send-late", "drop"):
        raise UsageError(f"expected send-late or drop, found {policy!r}", param="policy")
    if fit_context not in FIT_CONTEXT:
        raise UsageError(
            f"expected one of {', '.join(FIT_CONTEXT)}, found {fit_context!r}", param="fit_context"
        )
    config = ReplayConfig(
        client=ClientOptions(
            url=url, endpoint=endpoint, policy=policy, late_after_s=late_after,
            max_concurrency=max_concurrency, timeout_s=timeout, read_timeout_s=read_timeout,
            api_key=_api_key(api_key_env),
        ),
        schedule=ScheduleOptions(
            window=parse_window(window), speedup=speedup, max_gap=max_gap, limit=limit,
            sessions=sessions, max_input_tokens=max_input_tokens,
            max_output_tokens=max_output_tokens, fit_context=fit_context,  # type: ignore[arg-type]
        ),
        model=model, tokenizer=str(tokenizer) if tokenizer else None,
        probe_tokenize=probe_tokenize, engine_extras=engine_extras, seed=seed,
        slo=parse_slo(slo, slo_anchor), warmup=warmup, drain=drain,
        vllm_keys=vllm_keys, source=source, on_context=_context_warner(),
    )  # fmt: skip
    try:
        check_config(config)  # before the output folder or the source is touched
    except UsageError as exc:
        if exc.param not in _CLI_PARAMS:
            raise
        raise UsageError(exc.message, param=_CLI_PARAMS[exc.param]) from None
    return config


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
) -> None:
    """Replay a trace (or synthetic workload) open-loop against an OpenAI-compatible server.

    Every request is sent at its scheduled time (absolute deadlines), streamed, and recorded
    to <out>/records/*.parquet as it finishes; <out>/summary.json holds TTFT, TPOT, ITL, E2E
    (service and schedule anchored), schedule lag, throughput and goodput; <out>/report.html
    charts them.

    Example: burstlab replay azure-llm-2023-conv --url http://127.0.0.1:8080
    --window 0:600 --speedup 10 --limit 500 --slo ttft=0.5,tpot=0.05 --vllm-keys
    """
    config = _config(
        url=url, endpoint=endpoint, model=model, window=window, speedup=speedup,
        max_gap=max_gap, limit=limit, max_concurrency=max_concurrency,
        policy=policy, late_after=late_after, slo=slo, slo_anchor=slo_anchor,
        vllm_keys=vllm_keys, tokenizer=tokenizer, probe_tokenize=probe_tokenize,
        engine_extras=engine_extras, max_input_tokens=max_input_tokens,
        max_output_tokens=max_output_tokens, fit_context=fit_context, sessions=sessions,
        timeout=timeout,
        read_timeout=read_timeout, api_key_env=api_key_env, seed=seed, warmup=warmup,
        drain=drain, source=source,
    )  # fmt: skip
    run_dir = _out(ctx, out, "replay", overwrite)
    requests = _requests(ctx, source)
    with _local_engine(engine, parallel, config, ctx) as (config, info):
        result = replay(requests, config, run_dir, engine_info=info, overwrite=overwrite)
    print_summary(result.metrics, run_dir)
    if result.interrupted:
        console.print("[yellow]interrupted: records of every finished request were kept[/]")
        raise typer.Exit(130)


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
) -> None:
    """Find the highest speedup whose SLO attainment stays ≥ --target (bracket + bisect).

    Each probe is a full replay kept in <out>/probe-NN-xSPEEDUP; <out>/capacity.json and
    <out>/report.html show goodput and attainment against offered load.

    Example: burstlab capacity azure-llm-2023-conv --url http://127.0.0.1:8080
    --slo ttft=0.5,tpot=0.05 --window 0:300 --speedup 10 --limit 200
    """
    config = _config(
        url=url, endpoint=endpoint, model=model, window=window, speedup=speedup,
        max_gap=max_gap, limit=limit, slo=slo, slo_anchor=slo_anchor,
        max_input_tokens=max_input_tokens, max_output_tokens=max_output_tokens,
        fit_context=fit_context, api_key_env=api_key_env, source=source,
    )  # fmt: skip
    folder = _out(ctx, out, "capacity", overwrite)
    requests = _requests(ctx, source)
    with _local_engine(engine, parallel, config, ctx) as (config, _):
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
) -> None:
    """Downstream fidelity: replay a real and a synthetic load against the same server and
    compare p99 E2E, p99 TTFT and goodput (synthetic ÷ real near 1 = a faithful load).

    Runs land in <out>/real and <out>/synthetic; <out>/comparison.json holds the table.

    Example: burstlab compare-load azure-llm-2023-conv synth.parquet --engine tiny
    --window 0:120 --speedup 2 --max-output-tokens 32 --slo ttft=0.5,tpot=0.05
    """
    config = _config(
        url=url, endpoint=endpoint, model=model, window=window, speedup=speedup,
        max_gap=max_gap, limit=limit, slo=slo, slo_anchor=slo_anchor,
        max_input_tokens=max_input_tokens, max_output_tokens=max_output_tokens,
        fit_context=fit_context, api_key_env=api_key_env, source=real,
    )  # fmt: skip
    folder = _out(ctx, out, "compare-load", overwrite)
    real_frame, synthetic_frame = _requests(ctx, real), _requests(ctx, synthetic)
    with _local_engine(engine, parallel, config, ctx) as (config, info):
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
    folder = _out(ctx, out, "calibration", overwrite)
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
