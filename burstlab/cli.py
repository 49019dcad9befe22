"""The `burstlab` command. The only module that imports every stage: each stage contributes its
commands through a `register(app)` function in its own `cli.py`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from burstlab import __version__
from burstlab.console import console as make_console
from burstlab.errors import BurstlabError

app = typer.Typer(
    name="burstlab",
    help="Real LLM-serving and serverless traces → Parquet, fitted models, synthetic workloads, timed replay.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = make_console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"burstlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    data_dir: Annotated[
        Optional[Path],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Option(
            "--data-dir",
            envvar="BURSTLAB_DATA_DIR",
            help="Where Parquet files, the DuckDB catalog and downloads live (default: per-user cache dir).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = {"data_dir": data_dir}


def _register_stages() -> None:
    import importlib

    for stage in ("traces", "fitting", "synth", "replay", "cards", "engines"):
        importlib.import_module(f"burstlab.{stage}.cli").register(app)


_register_stages()


def main() -> None:
    """Entry point: run the app, printing burstlab errors as one line without a traceback."""
    try:
        app()
    except BurstlabError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
