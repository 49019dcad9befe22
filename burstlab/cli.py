"""The `burstlab` command. The only module that imports every stage: each stage contributes its
commands through a `register(app)` function in its own `cli.py`.

One error policy for every command: a `BurstlabError` is printed as one line (``error: …``)
and the command exits 2 for a `UsageError` (bad parameters, as click does for bad options) or 1
for anything else; a `UsageError`'s parameter is shown as the option it came from
(``--window: …``). Ctrl-C exits 130. Nothing prints a traceback unless ``--debug`` is given —
an unexpected exception is reported in one line too, with the hint to rerun with ``--debug``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from typer.core import TyperGroup
from typer.exceptions import TyperException

from burstlab import __version__
from burstlab.console import console as make_console
from burstlab.errors import BurstlabError, UsageError

err = make_console(stderr=True)

#: The stages whose cli.py registers commands, in pipeline order.
STAGES = ("traces", "fitting", "synth", "replay", "cards", "engines")


def _flag(command: Any, param: str | None) -> str | None:
    """The option of `command` that parameter `param` came from (``--max-input-tokens``)."""
    if not param or command is None:
        return None
    for p in getattr(command, "params", []):
        opts = [o for o in getattr(p, "opts", []) if o.startswith("--")]
        if p.name == param or f"--{param.replace('_', '-')}" in opts:
            return opts[0] if opts else p.name.upper()
    return None


class _Group(TyperGroup):
    """Runs a subcommand; turns burstlab errors into one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BurstlabError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            message = str(exc)
            if isinstance(exc, UsageError):
                sub = self.get_command(ctx, ctx.invoked_subcommand or "")
                flag = _flag(sub, exc.param)
                if flag:
                    message = f"{flag}: {exc.message}"
            # soft_wrap: one line however long (rich would break it at the console width)
            err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
            raise typer.Exit(2 if isinstance(exc, UsageError) else 1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except (TyperException, typer.Exit, typer.Abort):
            raise  # click's own usage errors and exits keep click's handling
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            err.print(
                f"[bold red]internal error:[/] {escape(type(exc).__name__)}: {escape(str(exc))} "
                "[dim](a bug in burstlab: rerun with --debug for the traceback and report it)[/]",
                soft_wrap=True,
            )
            raise typer.Exit(1) from None


app = typer.Typer(
    name="burstlab",
    cls=_Group,
    help="Real LLM-serving and serverless traces → Parquet, fitted models, synthetic workloads, timed replay.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an error.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = {"data_dir": data_dir, "debug": debug}


for _stage in STAGES:
    importlib.import_module(f"burstlab.{_stage}.cli").register(app)


def main() -> None:
    """Entry point: run the app with the error policy of the module docstring."""
    app()


if __name__ == "__main__":
    main()
