"""`burstlab downstream`: downstream fidelity over many seeds (replay.downstream_fidelity).

Registered by replay/cli.py's `register`; the load options mean what they mean in `burstlab
replay` (burstlab.options), and the config is built by the same `build_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from burstlab.errors import UsageError
from burstlab.options import opt
from burstlab.params import parse_window
from burstlab.replay.cli_common import (
    MaxIn,
    MaxOut,
    Parallel,
    SloAnchor,
    SourceArg,
    WorkersOpt,
    build_config,
    console,
    data_dir_of,
    out_folder,
    read_requests,
)
from burstlab.replay.downstream import SYNTH_SIDE, downstream_fidelity


def _names(text: str | None) -> tuple[str, ...] | None:
    """``poisson,gamma`` → the names; None → every baseline; ``none`` or ``""`` → none."""
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    return () if names in ((), ("none",)) else names


def downstream_cmd(
    ctx: typer.Context,
    source: SourceArg,
    train: Annotated[str, opt("train-window", "required, e.g. 0:2400")],
    slo: Annotated[str, opt("slo", "required: attainment and goodput are judged under these")],
    heldout: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
        opt("heldout-window", "default: from the training end to the last arrival"),
    ] = None,
    windows: Annotated[int, opt("windows", "K per side: real held-out, real training, …")] = 5,
    window_s: Annotated[float, opt("window-length")] = 120.0,
    speedup: Annotated[
        Optional[float],  # noqa: UP045
        opt("speedup", "of every window (default: chosen for --utilisation)"),
    ] = None,
    utilisation: Annotated[
        float, opt("utilisation", "the real windows' mean rate when --speedup is not given")
    ] = 0.7,
    seed: Annotated[int, opt("seed", "of the first generated window; window i uses seed + i")] = 0,
    baselines: Annotated[
        Optional[str],  # noqa: UP045
        opt("baselines", "default: all three; 'none' for none"),
    ] = None,
    slo_anchor: SloAnchor = "service",
    max_input_tokens: MaxIn = None,
    max_output_tokens: MaxOut = None,
    engine: Annotated[str, opt("engine", "started afresh for every window")] = "tiny",
    parallel: Parallel = 4,
    workers: WorkersOpt = "auto",
    out: Annotated[
        Optional[Path],  # noqa: UP045
        opt("out", "the result folder (default: <data dir>/runs/downstream-<UTC time>)"),
    ] = None,
    overwrite: Annotated[bool, opt("overwrite")] = False,
) -> None:
    """Downstream fidelity you can trust: the same engine under K real windows and K seeds.

    Fits the --train-window part of TRACE, then replays K real windows of the held-out part, K
    of the training part, K synthetic windows (seeds --seed …) and K of each baseline, each on
    a freshly started local engine, interleaved (real, real, synthetic, baselines, …). Per
    window: p50/p99 E2E, p99 TTFT, p99 TPOT, attainment and goodput under --slo; a generated
    side is faithful on a metric when its median over seeds lies between the real windows'
    min and max widened by 25 % and its spread is at most 1.5× the real spread.

    Writes <out>/downstream.json, runs.parquet, verdicts.parquet, report.html and every run
    under <out>/runs/.

    Example: burstlab downstream azure-llm-2023-conv --train-window 0:2400 --windows 5
    --window-length 120 --engine tiny --slo ttft=0.5,tpot=0.05 --max-output-tokens 32
    """
    train_part = parse_window(train, param="train")
    held_part = parse_window(heldout, param="heldout")
    if train_part is None:
        raise UsageError("expected START:END in seconds, found ''", param="train")
    config = build_config(
        url="http://127.0.0.1", source=source, slo=slo, slo_anchor=slo_anchor,
        max_input_tokens=max_input_tokens, max_output_tokens=max_output_tokens,
        workers=workers,
    )  # fmt: skip
    folder = out_folder(ctx, out, "downstream", overwrite)
    frame = read_requests(ctx, source)
    console.print(
        f"downstream fidelity: {windows} windows of {window_s:g} s per side, each on a fresh "
        f"{engine} engine ({parallel} slots) …"
    )
    result = downstream_fidelity(
        frame, config, folder, train=train_part, heldout=held_part, windows=windows,
        window_s=window_s, seed=seed, baselines=_names(baselines), engine=engine,
        parallel=parallel, data_dir=data_dir_of(ctx), speedup=speedup, utilisation=utilisation,
        overwrite=overwrite,
    )  # fmt: skip
    if result.capacity_rps is not None and result.utilisation is not None:
        console.print(
            f"load: speedup ×{result.speedup:.4g} — the real windows offer "
            f"{result.utilisation:.0%} of the engine's {result.capacity_rps:.4g} req/s"
        )
    console.print(result.summary().renderable())
    verdicts = {k: v for k, v in result.faithful(SYNTH_SIDE).items() if v is not None}
    console.print(
        f"burstlab faithful on {sum(verdicts.values())}/{len(verdicts)} metrics; "
        f"saved {folder / 'downstream.json'}, {folder / 'report.html'}"
    )


def register(app: typer.Typer) -> None:
    """Add `downstream` to the burstlab CLI."""
    app.command("downstream")(downstream_cmd)
