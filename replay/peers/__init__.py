"""Results the peer tools read, and their results read back: vLLM `bench serve`, AIPerf and
guidellm (docs/interop.md has the field mapping tables and what has no counterpart).

- `export_run(run_dir, to, out)` → `ExportResult`: a burstlab replay run folder written in the
  peer's own output format (vLLM: ``vllm-bench-serve.json`` with the detailed per-request
  arrays; AIPerf: ``profile_export.jsonl`` + ``profile_export_aiperf.json``; guidellm:
  ``benchmarks.json``), atomically.
- `import_run(path, out=None)` → `ImportResult`: a run written by one of those tools (a file or
  its folder; the format is told from the files) as burstlab records (RECORD_SCHEMA, unknown
  fields null) and the `RunSummary` computed from them; with `out`, also a burstlab run folder
  (run.json, records/, summary.json) that `read_records`, `read_summary`, goodput and cards use.

Bad peer files raise one-line `InputError`s naming the file and the field.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from burstlab import __version__
from burstlab.atomic import check_out
from burstlab.errors import InputError, UsageError
from burstlab.replay.peers import aiperf, guidellm, vllm
from burstlab.replay.peers.common import (
    PEERS,
    ExportResult,
    ImportResult,
    Peer,
    read_run,
    summarize_imported,
    utc,
    write_run_folder,
)

__all__ = ["PEERS", "ExportResult", "ImportResult", "Peer", "detect", "export_run", "import_run"]

_MODULES = {"aiperf": aiperf, "guidellm": guidellm, "vllm": vllm}


def export_run(
    run_dir: str | Path, to: str, out: str | Path, *, overwrite: bool = False
) -> ExportResult:
    """Write the burstlab run at `run_dir` in peer format `to` (aiperf, guidellm, vllm) into the
    folder `out` (refused if it exists unless `overwrite`; written whole or not at all)."""
    if to not in PEERS:
        raise UsageError(f"unknown peer format {to!r}; expected one of {list(PEERS)}", param="to")
    check_out(out, overwrite=overwrite)
    run = read_run(run_dir)
    module = _MODULES[to]
    files = module.export(run, out, overwrite=overwrite)
    return ExportResult(to, Path(out), files, run.records.height, list(module.NO_COUNTERPART))  # type: ignore[arg-type]


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise InputError(path, f"not a JSON document ({exc})") from None


def detect(path: str | Path) -> tuple[Peer, Path]:
    """(peer format, the file to read) of a peer run: a folder holding
    ``profile_export.jsonl`` (AIPerf) or ``benchmarks.json`` (guidellm) or one vLLM result
    JSON, or one such file."""
    p = Path(path)
    if p.is_dir():
        if (p / aiperf.RECORDS_FILE).is_file():
            return "aiperf", p / aiperf.RECORDS_FILE
        if (p / guidellm.REPORT_FILE).is_file():
            return "guidellm", p / guidellm.REPORT_FILE
        jsons = sorted(q for q in p.glob("*.json") if not q.name.startswith("."))
        found = [q for q in jsons if vllm.is_result(_load_json(q))]
        if len(found) == 1:
            return "vllm", found[0]
        if len(found) > 1:
            raise InputError(p, "several vLLM results in one folder; name one file",
                             found=[q.name for q in found])  # fmt: skip
        raise InputError(p, "no peer run here", expected=f"{aiperf.RECORDS_FILE}, "
                         f"{guidellm.REPORT_FILE} or a vLLM bench serve result JSON")  # fmt: skip
    if not p.is_file():
        raise InputError(p, "no such file or folder")
    if p.suffix == ".jsonl":
        return "aiperf", p
    doc = _load_json(p)
    if isinstance(doc, dict) and "benchmarks" in doc:
        return "guidellm", p
    if vllm.is_result(doc):
        return "vllm", p
    raise InputError(p, "not a peer run", expected="an AIPerf profile_export.jsonl, a guidellm "
                     "benchmarks.json or a vLLM bench serve result")  # fmt: skip


def import_run(
    path: str | Path, out: str | Path | None = None, *, overwrite: bool = False
) -> ImportResult:
    """Read a run written by vLLM `bench serve`, AIPerf or guidellm (see `detect`) into
    burstlab records and summary; with `out`, also write it as a burstlab run folder."""
    if out is not None:
        check_out(out, overwrite=overwrite)
    peer, file = detect(path)
    if peer == "aiperf":
        records, run = aiperf.read(file)
        t0 = run.pop("t0_unix_ns") / 1e9
    else:
        doc = _load_json(file)
        if not isinstance(doc, dict):
            raise InputError(file, "not a peer run", expected="a JSON object")
        if peer == "guidellm":
            records, run = guidellm.read(doc, file)
            t0 = run.pop("t0_unix")
        else:
            records, run = vllm.read(doc, file)
            t0 = _vllm_date(doc.get("date"))
    summary = summarize_imported(records)
    run_dir = None
    if out is not None:
        run_json = {
            "burstlab_version": __version__,
            **run,
            "started_utc": utc(t0),
            "t0_utc": utc(t0),
        }
        run_dir = write_run_folder(out, records, summary, run_json, overwrite=overwrite)
    return ImportResult(peer, file, records, summary, run_dir)


def _vllm_date(text: Any) -> float:
    """vLLM's ``date`` (YYYYmmdd-HHMMSS, local time of the benchmark host, read as UTC) as
    Unix seconds; 0 when absent or unreadable (vLLM keeps no other wall-clock time)."""
    if isinstance(text, str):
        try:
            return (
                dt.datetime.strptime(text, "%Y%m%d-%H%M%S")
                .replace(tzinfo=dt.timezone.utc)
                .timestamp()
            )
        except ValueError:
            pass
    return 0.0
