"""What every peer format shares: reading a burstlab run, building records from a peer's
per-request data, and writing an imported run as a burstlab run folder.

Times: burstlab records are run-clock seconds (0 = run start); `run.json` holds the wall-clock
instant of run-clock 0 (``t0_utc``). Peers write wall-clock nanoseconds (AIPerf), Unix seconds
(guidellm) or `time.perf_counter()` seconds (vLLM); each module converts to and from these.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from burstlab.atomic import staged_dir, write_json
from burstlab.errors import InputError
from burstlab.parquet import write_atomic
from burstlab.replay.metrics import summarize
from burstlab.replay.records import RECORD_SCHEMA, chunk_tokens, read_records
from burstlab.replay.summary import RunSummary
from burstlab.results import Result, Summary

Peer = Literal["aiperf", "guidellm", "vllm"]
PEERS: tuple[Peer, ...] = ("aiperf", "guidellm", "vllm")


@dataclass
class BurstlabRun:
    """A burstlab run folder as the exporters read it: records (run-clock seconds), run.json,
    and the wall-clock Unix seconds of run-clock 0 (`t0_unix`)."""

    path: Path
    records: pl.DataFrame
    run: dict[str, Any]
    t0_unix: float

    @property
    def t0_ns(self) -> int:
        """Run-clock 0 as whole Unix nanoseconds (the base every ns timestamp is built on)."""
        return round(self.t0_unix * 1e9)

    def ns(self, seconds: float | None) -> int | None:
        """Run-clock seconds as Unix nanoseconds (None stays None)."""
        if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
            return None
        return self.t0_ns + round(seconds * 1e9)


def _unix(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def read_run(run_dir: str | Path) -> BurstlabRun:
    """A burstlab run folder (run.json + records/); InputError when it is not one."""
    path = Path(run_dir)
    run_json = path / "run.json"
    if not path.is_dir():
        raise InputError(path, "not a burstlab run folder", expected="a folder with run.json")
    try:
        run = json.loads(run_json.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(run_json, f"cannot read the run ({exc.strerror})") from None
    except ValueError as exc:
        raise InputError(run_json, f"not a JSON document ({exc})") from None
    if not isinstance(run, dict):
        raise InputError(run_json, "not a burstlab run", expected="a JSON object")
    records = read_records(path)
    t0 = _unix(run.get("t0_utc"))
    if t0 is None:
        t0 = _unix(run.get("started_utc"))
    if t0 is None:
        raise InputError(
            run_json, "the run has no wall-clock start", field="t0_utc", expected="an ISO time"
        )
    return BurstlabRun(path, records, run, t0)


def clean(value: Any) -> Any:
    """None for NaN / inf (strict JSON), the value otherwise."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def gaps(times: list[float] | None) -> list[float]:
    """Gaps between consecutive chunk times (seconds)."""
    if not times:
        return []
    return [b - a for a, b in itertools.pairwise(times)]


def stats(values: list[float], percentiles: tuple[float, ...]) -> dict[str, float | None]:
    """mean, std (population), min, max and the given percentiles (numpy linear), None when
    there are no values."""
    if not values:
        empty: dict[str, float | None] = {"mean": None, "std": None, "min": None, "max": None}
        return empty | {f"p{p:g}": None for p in percentiles}
    arr = np.asarray(values, dtype=float)
    out: dict[str, float | None] = {
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "min": float(arr.min()),
        "max": float(arr.max()),
    }
    for p in percentiles:
        out[f"p{p:g}"] = float(np.percentile(arr, p))
    return out


#: One imported request, in burstlab terms (run-clock seconds); see `records_from`.
@dataclass
class Imported:
    """One request read from a peer file, already on burstlab's run clock (seconds)."""

    sent_s: float | None
    ok: bool
    intended_s: float | None = None
    first_byte_s: float | None = None
    first_token_s: float | None = None
    end_s: float | None = None
    chunk_times_s: list[float] | None = None
    error: str | None = None
    error_kind: str | None = None
    status: int | None = None
    dropped: bool = False
    input_tokens: int | None = None
    prompt_tokens_client: int | None = None
    prompt_tokens_server: int | None = None
    output_tokens_client: int | None = None
    output_tokens_server: int | None = None
    output_tokens_target: int | None = None
    queue_s: float | None = None
    session_id: str | None = None
    turn: int | None = None
    worker_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def records_from(rows: list[Imported]) -> pl.DataFrame:
    """A records frame (RECORD_SCHEMA columns, in order; unknown fields null) from imported
    requests. `intended_s` falls back to `sent_s`, lag is sent − intended, chunk token counts
    spread the server's output count evenly over the chunks (`records.chunk_tokens`)."""
    data: dict[str, list[Any]] = {c: [] for c in RECORD_SCHEMA}
    for i, r in enumerate(rows):
        intended = r.intended_s if r.intended_s is not None else r.sent_s
        if intended is None:
            intended = r.end_s if r.end_s is not None else 0.0
        chunks = list(r.chunk_times_s) if r.chunk_times_s is not None else None
        total = r.output_tokens_server if r.ok else None
        row = {
            "req_id": i,
            "session_id": r.session_id,
            "turn": r.turn,
            "intended_s": intended,
            "dispatch_s": intended,
            "sent_s": r.sent_s,
            "first_byte_s": r.first_byte_s,
            "first_token_s": r.first_token_s,
            "end_s": r.end_s,
            "chunk_times_s": chunks,
            "chunk_chars": None,
            "chunk_tokens": chunk_tokens([1] * len(chunks), total) if chunks is not None else None,
            "status": r.status,
            "ok": r.ok,
            "error_kind": r.error_kind,
            "error": r.error,
            "finish_reason": None,
            "dropped": r.dropped,
            "late": False,
            "lag_s": r.sent_s - intended if r.sent_s is not None else None,
            "queue_s": r.queue_s,
            "input_tokens": r.input_tokens,
            "prompt_tokens_client": r.prompt_tokens_client,
            "prompt_tokens_server": r.prompt_tokens_server,
            "output_tokens_target": r.output_tokens_target,
            "output_tokens_client": r.output_tokens_client,
            "output_tokens_server": r.output_tokens_server,
            "sse_comments": None,
            "attempts": 1 if r.sent_s is not None else 0,
            "oversized": None,
            "worker_id": r.worker_id if r.worker_id is not None else 0,
        }
        for c in RECORD_SCHEMA:
            data[c].append(row.get(c))  # a column peers do not report (prefix cache): null
    return pl.DataFrame(data, schema=RECORD_SCHEMA)


@dataclass
class ExportResult(Result):
    """What `export_run` wrote: the peer format, the folder and its files, the request count."""

    to: Peer
    out: Path
    files: list[str]
    requests: int
    no_counterpart: list[str]

    def table(self) -> pl.DataFrame:
        return pl.DataFrame({"file": self.files})

    def to_dict(self) -> dict[str, Any]:
        return {
            "to": self.to,
            "out": str(self.out),
            "files": list(self.files),
            "requests": self.requests,
            "no_counterpart": list(self.no_counterpart),
        }

    def summary(self) -> Summary:
        s = Summary(f"export: {self.requests:,} requests as {self.to} → {self.out}")
        s.add("files", self.table())
        if self.no_counterpart:
            s.notes.append("no counterpart in this format: " + "; ".join(self.no_counterpart))
        return s


@dataclass
class ImportResult(Result):
    """A peer tool's run read into burstlab: its format, the records (RECORD_SCHEMA), the
    summary computed from them, and the run folder written (None when none was asked)."""

    peer: Peer
    source: Path
    records: pl.DataFrame
    metrics: RunSummary
    run_dir: Path | None = None

    def table(self) -> pl.DataFrame:
        return self.metrics.table()

    def to_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "source": str(self.source),
            "run_dir": None if self.run_dir is None else str(self.run_dir),
            "summary": self.metrics.to_dict(),
        }

    def summary(self) -> Summary:
        s = self.metrics.summary()
        s.title = f"imported from {self.peer} ({self.source}): " + s.title
        return s


def write_run_folder(
    out: str | Path,
    records: pl.DataFrame,
    summary: RunSummary,
    run: dict[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a burstlab run folder (run.json, records/part-00000.parquet, summary.json)
    atomically: the whole folder appears at once or not at all."""
    with staged_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / "run.json", run)
        write_atomic(records.to_arrow(), tmp / "records" / "part-00000.parquet")
        write_json(tmp / "summary.json", summary.to_dict())
    return Path(out)


def summarize_imported(records: pl.DataFrame) -> RunSummary:
    """The burstlab summary of imported records (warm-up and drain fractions as a run's)."""
    return summarize(records, scheduled=records.height)


def utc(unix_s: float) -> str:
    """Unix seconds as an ISO UTC time."""
    return dt.datetime.fromtimestamp(unix_s, dt.timezone.utc).isoformat()
