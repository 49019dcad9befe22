"""The CLI vocabulary: every option name that more than one command uses, with its ONE meaning.

Commands declare such options with `opt(name, detail)`, so ``--out`` is "where this command
writes its result" in every command, ``--speedup 10`` is ten times faster everywhere, and so on;
`detail` may only add what is particular to the command (what the result is, a default). The
table in docs/cli.md is generated from `VOCABULARY`, and tests/foundation/test_cli_vocabulary.py
walks the whole command tree and fails on an option name used with two meanings, or on a
command that writes without ``--out``.

`COMMANDS` says what each command produces: ``out`` (a file or folder at ``--out``, refused if
it exists unless ``--overwrite``), ``catalog`` (writes into ``--data-dir``: ingest, fetch) or
``screen`` (prints only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import typer


@dataclass(frozen=True)
class Term:
    """One option of the vocabulary: its flags, metavar and meaning."""

    flags: tuple[str, ...]
    meaning: str
    metavar: str | None = None


VOCABULARY: dict[str, Term] = {
    t.flags[0].removeprefix("--"): t
    for t in (
        Term(("--out", "-o"), "Where this command writes its result", "PATH"),
        Term(("--overwrite",), "Replace what is already at --out (refused otherwise)"),
        Term(("--report",), "Also write an HTML report with charts to this file", "HTML"),
        Term(("--seed",), "Random seed: the same seed gives the same output", "INT"),
        Term(
            ("--window",),
            "Use only the requests that arrive in START:END (trace seconds; ':600' is from the "
            "start, '300:' to the end)",
            "START:END",
        ),
        Term(
            ("--speedup",),
            "Play time this many times faster (10 = ten times faster, 1 = real time): gaps "
            "and think times are divided by it",
            "X",
        ),
        Term(
            ("--rate-scale",),
            "Multiply the load, keeping the burst structure (more requests in the same time; "
            "--speedup instead compresses time)",
            "X",
        ),
        Term(("--duration",), "Seconds of workload", "SECONDS"),
        Term(("--model",), "Model name the server is asked for (or serves)", "NAME"),
        Term(
            ("--arrival-model",),
            "Arrival model instead of the spec's choice: renewal (i.i.d. fitted gaps), "
            "modulated (rate curve × burst regime) or windowed (per-window fits)",
            "MODEL",
        ),
        Term(("--where",), "SQL condition on the table first, e.g. \"model = 'GPT-4'\"", "SQL"),
        Term(("--by",), "Also analyse or fit each value of this column (model, kind …)", "COLUMN"),
        Term(("--url",), "Base URL of the OpenAI-compatible server (no /v1 suffix)", "URL"),
        Term(
            ("--endpoint",),
            "completions (/v1/completions) or chat (/v1/chat/completions)",
            "completions|chat",
        ),
        Term(
            ("--slo",),
            "Latency objectives, KEY=VALUE in seconds with keys ttft, tpot, e2e "
            "(e.g. ttft=0.5,tpot=50ms)",
            "KEY=VALUE,…",
        ),
        Term(
            ("--slo-anchor",),
            "Measure SLOs from the actual send (service) or the intended send (schedule: "
            "includes client lag and queueing, free of coordinated omission)",
            "service|schedule",
        ),
        Term(
            ("--max-gap",),
            "Cap every idle gap between sends at this many seconds (after --speedup)",
            "SECONDS",
        ),
        Term(("--limit",), "Use at most this many requests (the earliest)", "N"),
        Term(("--max-input-tokens",), "Clip every prompt to this many tokens", "TOKENS"),
        Term(("--max-output-tokens",), "Clip every output to this many tokens", "TOKENS"),
        Term(
            ("--fit-context",),
            "Requests whose prompt + output tokens exceed the context length the server "
            "reports: send them as asked (marked oversized in the records), skip them, or "
            "clip them to fit",
            "send|skip|clip",
        ),
        Term(
            ("--api-key-env",),
            "Environment variable that holds the API key (sent as a Bearer token)",
            "VAR",
        ),
        Term(
            ("--engine",),
            "Start a local llama.cpp engine of this size (tiny, small, medium) on 127.0.0.1, "
            "target it, and stop it afterwards",
            "SIZE",
        ),
        Term(
            ("--parallel",),
            "Parallel slots of the local engine (continuous batching; more requests queue)",
            "N",
        ),
        Term(
            ("--workers",),
            "Client processes that send the load from this machine, each its share of one "
            "schedule from one start instant (auto: enough for the busiest second at 1,500 "
            "req/s each, at most one per core)",
            "N|auto",
        ),
        Term(
            ("--sessions",),
            "Treat requests as multi-turn sessions (a turn follows its predecessor)",
        ),
        Term(("--holdout",), "Seconds held out at the end of the trace for judging", "SECONDS"),
        Term(("--spec",), "The workload spec (JSON) that generated the data", "SPEC"),
        Term(
            ("--format",),
            "Output format: parquet, mooncake (JSONL), burstgpt (CSV) or azure (CSV in the "
            "Azure LLM trace schema)",
            "FORMAT",
        ),
        Term(
            ("--train-window",),
            "The training part of the trace, START:END in trace seconds: what the workload "
            "model is fitted on",
            "START:END",
        ),
        Term(
            ("--heldout-window",),
            "The held-out part of the trace, START:END in trace seconds: never fitted on",
            "START:END",
        ),
        Term(("--windows",), "How many windows (or seeds) of each kind are compared", "K"),
        Term(("--window-length",), "Length of every compared window, trace seconds", "SECONDS"),
        Term(
            ("--utilisation",),
            "Target load as a share (0-1) of the engine's measured saturation throughput",
            "U",
        ),
        Term(
            ("--baselines",),
            "Peer generators run beside burstlab, comma-separated (poisson, gamma, burstgpt_demo)",
            "NAMES",
        ),
        Term(("--to",), "The peer tool whose format is written: aiperf, guidellm or vllm", "TOOL"),
        Term(
            ("--ray",),
            "Send the load from Ray actors spread over a Ray cluster's nodes, the --workers "
            "shares from one start instant: local (a cluster started here), auto (the cluster "
            "this host belongs to) or the cluster's HOST:PORT (needs burstlab[ray] on every "
            "host)",
            "ADDRESS",
        ),
    )
}

Produces = Literal["out", "catalog", "screen"]

#: What each command produces (see the module docstring); a new command must be listed here.
COMMANDS: dict[str, Produces] = {
    "ingest": "catalog",
    "fetch": "catalog",
    "ls": "screen",
    "sql": "screen",
    "sources": "screen",
    "burstiness": "screen",
    "fit": "out",
    "import-servegen": "out",
    "serverless": "out",
    "synth": "out",
    "validate": "out",
    "fidelity": "out",
    "replay": "out",
    "capacity": "out",
    "compare-load": "out",
    "downstream": "out",
    "calibrate": "out",
    "card": "out",
    "engine": "screen",
    "export": "out",
    "import-run": "out",
}


def help_text(name: str, detail: str = "") -> str:
    """The help of vocabulary option `name`: its meaning, then what is particular to a command."""
    meaning = VOCABULARY[name].meaning
    return f"{meaning} — {detail}" if detail else f"{meaning}."


def opt(name: str, detail: str = "", **kwargs: Any) -> Any:
    """A typer Option for vocabulary term `name` (e.g. ``opt("out", "the spec (JSON)")``).

    Use it inside ``Annotated[type, opt(...)]``; extra keyword arguments go to typer.Option."""
    term = VOCABULARY[name]
    kwargs.setdefault("metavar", term.metavar)
    return typer.Option(*term.flags, help=help_text(name, detail), **kwargs)


def vocabulary_markdown() -> str:
    """The vocabulary as a Markdown table (docs/cli.md includes it)."""
    rows = ["| option | meaning |", "|---|---|"]
    for term in VOCABULARY.values():
        flags = ", ".join(
            f"`{f}{' ' + term.metavar if term.metavar and f.startswith('--') else ''}`"
            for f in term.flags
        )
        meaning = term.meaning.replace("|", "\\|")
        rows.append(f"| {flags} | {meaning}. |")
    return "\n".join(rows)
