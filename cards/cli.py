"""`burstlab card`: the cards stage's command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from burstlab.cards.target import card
from burstlab.console import console as make_console
from burstlab.options import opt

console = make_console()


def card_cmd(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            help="A dataset id (e.g. azure-llm-2023-conv), a canonical or synthetic "
            "Parquet file, a workload spec JSON, or a replay run directory.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, opt("out", "the card folder (README.md, data/, charts/)")],
    overwrite: Annotated[bool, opt("overwrite")] = False,
    seed: Annotated[int, opt("seed", "spec cards: of the generated workload")] = 0,
    duration: Annotated[
        Optional[float],  # noqa: UP045 - typer reads the annotation at runtime
        opt("duration", "spec cards: to generate (default: the span the spec was fitted on)"),
    ] = None,
    spec: Annotated[
        Optional[Path],  # noqa: UP045
        opt("spec", "synthetic Parquet cards: adds the spec and its fidelity report"),
    ] = None,
) -> None:
    """Write a Hugging Face dataset card for a source, a synthetic workload, a spec or a run.

    The folder holds README.md (YAML front matter validated offline with huggingface_hub), the
    Parquet data and charts as PNG and SVG, ready to upload. It is written whole or not at all.

    Example: burstlab card azure-llm-2023-conv --out cards/conv
    """
    result = card(
        target,
        out,
        data_dir=(ctx.obj or {}).get("data_dir"),
        overwrite=overwrite,
        seed=seed,
        duration_s=duration,
        spec=spec,
    )
    console.print(result.summary().renderable())


def register(app: typer.Typer) -> None:
    """Add `burstlab card` to the CLI."""
    app.command("card")(card_cmd)
