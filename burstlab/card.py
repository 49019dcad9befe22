"""`burstlab card`: turn a source, a synthetic workload or a replay run into a dataset card.

A card is a directory ready to publish (e.g. `huggingface-cli upload`): `README.md` in the
Hugging Face dataset-card format (YAML front matter validated offline), the Parquet data and
the charts (PNG + SVG). What the target is decides the card:

- a dataset id (`azure-llm-2023-conv`) or a canonical Parquet file → a SOURCE card;
- a Parquet file that synth wrote (`source` = ``synth:…``) → a SYNTHETIC card;
- a workload spec JSON (``"burstlab_spec": 1``) → a SPEC card;
- a replay run directory (with `run.json`) → a RUN card.

This module is part of the package face: it may use every stage, but imports them inside
functions so `import burstlab` stays light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from burstlab.card_hf import CardResult, check_card
from burstlab.errors import InputError

CardKind = Literal["source", "synth", "spec", "run"]

__all__ = ["CardResult", "card_kind", "check_card", "register", "write_card"]


def card_kind(target: str | Path) -> tuple[CardKind, Path | None]:
    """What kind of card `target` makes, and the file or folder it names (None: a dataset id)."""
    path = Path(target)
    if path.is_dir():
        if (path / "run.json").is_file():
            return "run", path
        raise InputError(
            path,
            "a directory is a card target only when it is a replay run",
            expected="run.json inside it",
        )
    if path.is_file():
        if path.suffix == ".parquet":
            from burstlab.parquet import read_metadata

            source = str(read_metadata(path).get("source") or "")
            return ("synth" if source.startswith("synth:") else "source"), path
        if path.suffix == ".json":
            if not _is_spec(path):
                raise InputError(
                    path, "not a workload spec", expected='a JSON object with "burstlab_spec"'
                )
            return "spec", path
        raise InputError(
            path,
            "unsupported card target",
            expected="a .parquet, a spec .json or a run directory",
            found=path.suffix or "no suffix",
        )
    if path.suffix or "/" in str(target):
        raise InputError(path, "no such file or directory")
    return "source", None


def write_card(
    target: str | Path,
    out_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    seed: int = 0,
    duration_s: float | None = None,
    spec: str | Path | None = None,
) -> CardResult:
    """Write the card for `target` (see the module docstring) into `out_dir`.

    `data_dir` is where ingested datasets live (a dataset id is looked up there). For a spec,
    `seed` and `duration_s` (default: the span the spec was fitted on) pick the workload the
    card publishes; for a synthetic Parquet file, `spec` is the spec that generated it (adds
    the spec and the fidelity report). Returns the written card with its validation result;
    raises BurstlabError when the card is invalid.
    """
    kind, path = card_kind(target)
    if kind == "source":
        from burstlab.card_source import source_card

        if path is None:
            from burstlab.traces.catalog import parquet_path

            path = parquet_path(str(target), data_dir)
        return source_card(path, out_dir, overwrite=overwrite)
    if kind == "run":
        from burstlab.card_run import run_card

        return run_card(path, out_dir, overwrite=overwrite)
    from burstlab.card_synth import spec_card, synth_parquet_card

    if kind == "spec":
        return spec_card(
            path, out_dir, seed=seed, duration_s=duration_s, data_dir=data_dir, overwrite=overwrite
        )
    return synth_parquet_card(path, out_dir, spec_path=spec, data_dir=data_dir, overwrite=overwrite)


def _is_spec(path: Path) -> bool:
    try:
        return "burstlab_spec" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


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
        result = write_card(
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
