"""`burstlab export` and `burstlab import-run`: a replay run in the peer tools' formats, and
their runs read back (burstlab.replay.peers). Registered by replay/cli.py's `register`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from burstlab.console import console as make_console
from burstlab.options import opt
from burstlab.replay.peers import export_run, import_run

console = make_console()


def export_cmd(
    run: Annotated[Path, typer.Argument(help="A burstlab replay run folder (run.json, records/).")],
    to: Annotated[str, opt("to")],
    out: Annotated[Path, opt("out", "the folder the peer's files are written to")],
    overwrite: Annotated[bool, opt("overwrite")] = False,
) -> None:
    """Write a replay run in a peer tool's own result format (vLLM bench serve, AIPerf,
    guidellm), so their readers and dashboards take it.

    What has no counterpart in the format (schedule-anchored latencies, lag, drops) is listed;
    docs/interop.md has the field mapping.

    Example: burstlab export out/demo/replay --to vllm --out out/demo/replay-vllm
    """
    result = export_run(run, to, out, overwrite=overwrite)
    console.print(result.summary().renderable())


def import_run_cmd(
    source: Annotated[
        Path,
        typer.Argument(
            help="A peer run: an AIPerf artifacts folder (profile_export.jsonl), a guidellm "
            "benchmarks.json, or a vLLM bench serve result JSON saved with --save-detailed "
            "(a file or its folder)."
        ),
    ],
    out: Annotated[Path, opt("out", "the burstlab run folder (run.json, records/, summary.json)")],
    overwrite: Annotated[bool, opt("overwrite")] = False,
) -> None:
    """Read a run written by vLLM bench serve, AIPerf or guidellm into a burstlab run folder,
    so summaries, goodput and reports work on it (the format is told from the files).

    Example: burstlab import-run artifacts/my-aiperf-run --out runs/aiperf-imported
    """
    result = import_run(source, out, overwrite=overwrite)
    console.print(result.summary().renderable())
    console.print(f"saved {result.run_dir}")


def register(app: typer.Typer) -> None:
    """Add `export` and `import-run` to the burstlab CLI."""
    app.command("export")(export_cmd)
    app.command("import-run")(import_run_cmd)
