"""`burstlab engine`: serve a real llama.cpp engine (or the instant test server) in the foreground."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from burstlab.console import console as make_console
from burstlab.engines.instant import instant_server
from burstlab.engines.instant.config import DEFAULT_MODEL
from burstlab.engines.llamacpp import local
from burstlab.errors import EngineError
from burstlab.options import opt
from burstlab.params import non_negative, parse_pairs

console = make_console()


def _serve_until_interrupted(handle, what: str) -> None:
    """Print how to reach `handle`, then wait; Ctrl-C (at any moment) stops it cleanly."""
    try:
        console.print(
            f"[bold green]{what}[/] at [bold]{handle.base_url}[/]  model: {handle.model!r}"
        )
        console.print(
            f"try: curl -N {handle.base_url}/v1/completions -H 'Content-Type: application/json' "
            f'-d \'{{"model": "{handle.model}", "prompt": "hello", "max_tokens": 8, '
            f'"stream": true}}\''
        )
        console.print("Ctrl-C stops it.")
        while handle.alive:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    code = handle.process.returncode
    if code not in (0, None, -15, -2):
        raise EngineError(f"{what} exited with code {code}; see its log")


def engine(
    ctx: typer.Context,
    size: Annotated[
        str,
        typer.Option(help="Random-weight model preset: tiny, small or medium (per-token latency)."),
    ] = "tiny",
    gguf: Annotated[
        Optional[Path],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Option(help="Serve this llama.cpp GGUF file instead of a random-weight preset."),
    ] = None,
    model: Annotated[
        Optional[str],  # noqa: UP045
        opt("model", "served under this name (default: burstlab-random-SIZE or the file's stem)"),
    ] = None,
    parallel: Annotated[int, opt("parallel")] = 4,
    ctx_per_slot: Annotated[int, typer.Option(help="Context tokens per slot.")] = 2048,
    threads: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="CPU threads for llama.cpp (default: half the usable cores)."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8080,
    instant: Annotated[
        bool,
        typer.Option(
            "--instant",
            help="Serve the instant OpenAI-compatible test server instead of llama.cpp "
            "(answers at once; for client ceilings and fault drills).",
        ),
    ] = False,
    faults: Annotated[
        str,
        typer.Option(help="With --instant: fault mix, e.g. 'cut=0.1,http500=0.05'."),
    ] = "",
    delay: Annotated[
        float, typer.Option(help="With --instant: seconds before the first token.")
    ] = 0.0,
    itl: Annotated[float, typer.Option(help="With --instant: seconds between tokens.")] = 0.0,
) -> None:
    """Serve a real local LLM engine on 127.0.0.1 until Ctrl-C, and print its URL.

    By default: llama.cpp's own server (continuous batching, /metrics, /tokenize) with a random-weight model built on first use. Random weights are fine for load tests: burstlab fixes every output length with max_tokens. Point `burstlab replay` at the printed URL.
    """
    if instant:
        handle = instant_server(
            port=port,
            faults=parse_pairs(
                faults, param="faults", value=non_negative, expected="MODE=PROBABILITY"
            ),
            delay_s=delay,
            itl_s=itl,
            model=model or DEFAULT_MODEL,
        )
        _serve_until_interrupted(handle, "instant server")
        return
    with console.status("starting llama.cpp…"):
        handle = local(
            size,
            gguf=gguf,
            alias=model,
            parallel=parallel,
            ctx_per_slot=ctx_per_slot,
            threads=threads,
            port=port,
            data_dir=(ctx.obj or {}).get("data_dir"),
        )
    console.print(
        f"llama.cpp ready in {handle.started_in_s:.2f} s: {handle.n_parallel} slots × "
        f"{handle.ctx_per_slot} ctx, {handle.threads} threads, log {handle.log_path}"
    )
    _serve_until_interrupted(handle, "llama.cpp engine")


def register(app: typer.Typer) -> None:
    """Add `burstlab engine` to the CLI."""
    app.command("engine")(engine)
