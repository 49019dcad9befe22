"""`burstlab card`: the cards stage's command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from burstlab.cards.target import card


def register(app: typer.Typer) -> None:
    """Add `burstlab card` to the CLI."""

    @app.command("card")
    def card_command(
        ctx: typer.Context,
        target: Annotated[
            str,
            typer.Argument(
                help="A dataset id (e.g. azure-llm-2023-conv), a canonical or synthetic "
                "Parquet file, a workload spec JSON, or a replay run directory.",
                show_default=False,
            ),
        ],
        out: Annotated[
            Path,
            typer.Option(
                "--out", "-o", help="Card directory to write (README.md, data/, charts/)."
            ),
        ],
        overwrite: Annotated[
            bool,
            typer.Option(
                "--overwrite",
                help="Replace README.md, data/ and charts/ of an existing card in --out.",
            ),
        ] = False,
        seed: Annotated[int, typer.Option(help="Spec cards: seed of the generated workload.")] = 0,
        duration: Annotated[
            Optional[float],  # noqa: UP045 - typer reads the annotation at runtime
            typer.Option(help="Spec cards: seconds to generate (default: the fitted span)."),
        ] = None,
        spec: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option(help="Synthetic Parquet cards: the spec that generated the file."),
        ] = None,
    ) -> None:
        """Write a Hugging Face dataset card for a source, a synthetic workload, a spec or a run.

        The directory holds README.md (YAML front matter validated offline with
        huggingface_hub), the Parquet data and charts as PNG and SVG, ready to upload.
        """
        from rich.console import Console

        data_dir = (ctx.obj or {}).get("data_dir")
        result = card(
            target,
            out,
            data_dir=data_dir,
            overwrite=overwrite,
            seed=seed,
            duration_s=duration,
            spec=spec,
        )
        console = Console()
        console.print(f"[bold]{result.kind} card[/] written to {result.out_dir}")
        for rel in [*result.data_files, *result.charts]:
            console.print(f"  {rel}")
        console.print(
            f"  README.md (front matter validated offline: {len(result.problems)} problems)"
        )
