"""What the replay stage's commands share: the option types (one declaration, one meaning),
the source and output checks, the local engine and the ReplayConfig the options build.

`replay/cli.py` (replay, capacity, compare-load, calibrate) and `replay/downstream_cli.py` both
import it, so neither command module imports the other.
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
from burstlab.replay.client import ClientOptions
from burstlab.replay.goodput import parse_slo
from burstlab.replay.run import ReplayConfig, check_config, target_engine
from burstlab.replay.schedule import FIT_CONTEXT, ScheduleOptions
from burstlab.replay.summary import ContextFit, RunSummary
from burstlab.replay.workers import parse_workers

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
WorkersOpt = Annotated[str, opt("workers")]
RayOpt = Annotated[Optional[str], opt("ray", "default: off")]  # noqa: UP045
Overwrite = Annotated[bool, opt("overwrite")]
SourceArg = Annotated[
    str,
    typer.Argument(
        help="A requests Parquet file (synthetic too), an ingested dataset id or a shipped "
        "sample (e.g. azure-llm-2023-conv)."
    ),
]
DEFAULT_URL = "http://127.0.0.1:8080"


def data_dir_of(ctx: typer.Context) -> Path | None:
    return (ctx.obj or {}).get("data_dir")


def out_folder(ctx: typer.Context, out: Path | None, kind: str, overwrite: bool) -> Path:
    """--out, or a fresh `<data dir>/runs/<kind>-<UTC time>` folder; checked before any work."""
    if out is None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = resolve_data_dir(data_dir_of(ctx)) / "runs" / f"{kind}-{stamp}"
    return check_out(out, overwrite=overwrite)


def read_requests(ctx: typer.Context, source: str) -> pl.DataFrame:
    """The requests table SOURCE names; InputError (one line) saying what SOURCE is instead when
    it is a folder, a spec, a CSV or a file Parquet cannot read."""
    try:
        lazy = traces.scan(source, data_dir_of(ctx))
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
def local_engine(
    size: str | None, parallel: int, config: ReplayConfig, ctx: typer.Context
) -> Iterator[tuple[ReplayConfig, dict | None]]:
    """With a size: start llama.cpp on 127.0.0.1, point `config` at it, stop it afterwards."""
    if not size:
        yield config, None
        return
    console.print(f"starting a local llama.cpp engine ({size}, {parallel} slots) …")
    with engines.local(size, parallel=parallel, data_dir=data_dir_of(ctx)) as handle:
        config = target_engine(config, handle)
        console.print(f"engine ready at {handle.base_url} in {handle.started_in_s:.1f} s")
        yield config, handle.info()


def build_config(
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
    workers: str = "auto",
    ray: str | None = None,
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
        workers=parse_workers(workers), ray=ray,
    )  # fmt: skip
    try:
        check_config(config)  # before the output folder or the source is touched
    except UsageError as exc:
        if exc.param not in _CLI_PARAMS:
            raise
        raise UsageError(exc.message, param=_CLI_PARAMS[exc.param]) from None
    return config
