"""Per-request records (docs/design.md §3), streamed to Parquet parts while the run goes on.

Keeping raw records only in memory means a crash or Ctrl-C loses the run; so every `flush_every`
records or `flush_s` seconds the finished records are written to `records/part-NNNNN.parquet`
(atomically: temp file, then rename) on a worker thread, off the event loop. All times are
seconds on the run clock (0 = run start, monotonic); `run.json` holds the wall-clock start.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa

from burstlab.errors import InputError
from burstlab.parquet import write_atomic

#: The record table. `*_s` are run-clock seconds; token counts are tokens.
RECORD_SCHEMA: dict[str, pl.DataType] = {
    "req_id": pl.Int64(),
    "session_id": pl.String(),
    "turn": pl.Int32(),
    "intended_s": pl.Float64(),  # scheduled send time (dynamic for later session turns)
    "dispatch_s": pl.Float64(),  # when the pacer released it (before any concurrency queue)
    "sent_s": pl.Float64(),  # just before the request was written; null when dropped
    "first_byte_s": pl.Float64(),  # response headers received
    "first_token_s": pl.Float64(),  # first chunk carrying generated text
    "end_s": pl.Float64(),  # stream finished or failed
    "chunk_times_s": pl.List(pl.Float64()),  # arrival time of every chunk carrying text
    "chunk_chars": pl.List(pl.Int32()),  # generated characters in that chunk
    "chunk_tokens": pl.List(pl.Int32()),  # tokens in that chunk (see metrics.chunk_tokens)
    "status": pl.Int16(),  # HTTP status; null when no response
    "ok": pl.Boolean(),
    # refused | reset | http | timeout | cut | malformed | server-error | client | cancelled | dropped
    "error_kind": pl.String(),
    "error": pl.String(),
    "finish_reason": pl.String(),
    "dropped": pl.Boolean(),  # behind schedule under --policy drop: never sent
    "late": pl.Boolean(),  # sent more than the late tolerance after intended_s
    "lag_s": pl.Float64(),  # sent_s - intended_s (includes --max-concurrency queueing)
    "queue_s": pl.Float64(),  # time waiting for a --max-concurrency slot
    "input_tokens": pl.Int32(),  # target prompt length (trace, clipped)
    "prompt_tokens_client": pl.Int32(),  # the client's count of the prompt it sent
    "prompt_tokens_server": pl.Int32(),  # usage.prompt_tokens
    "output_tokens_target": pl.Int32(),  # max_tokens sent
    "output_tokens_client": pl.Int32(),  # chunks with text (1 token each) or tokenizer count
    "output_tokens_server": pl.Int32(),  # usage.completion_tokens
    "sse_comments": pl.Int32(),  # keep-alive comment lines seen
    "attempts": pl.Int8(),  # 2 when a dropped keep-alive connection forced one resend; 0 unsent
    # prompt + output tokens as sent exceed the context the server reported; null: not reported
    "oversized": pl.Boolean(),
}
COLUMNS = tuple(RECORD_SCHEMA)
ARROW_SCHEMA = pl.DataFrame(schema=RECORD_SCHEMA).to_arrow().schema
#: Rows converted per pyarrow call on the writer thread. Converting Python objects holds the
#: GIL for the whole call, so small slices let the event loop take it back between slices
#: (with the short switch interval the client sets) instead of stalling for tens of ms.
SLICE_ROWS = 128


def chunk_tokens(chars: list[int], total: int | None) -> list[int]:
    """Tokens per chunk: 1 each, unless the server's total says chunks held several.

    When the server reports `total` completion tokens over fewer text chunks (vLLM stream
    intervals, speculative decoding), the total is spread over chunks in proportion to their
    characters, every chunk getting at least one (largest remainders), so ITL can spread each
    chunk's gap over its tokens.
    """
    n = len(chars)
    if n == 0:
        return []
    if total is None or total <= n:
        return [1] * n
    extra = total - n
    weight = sum(chars) or n
    shares = [extra * (c if sum(chars) else 1) / weight for c in chars]
    base = [int(s) for s in shares]
    left = extra - sum(base)
    order = sorted(range(n), key=lambda i: shares[i] - base[i], reverse=True)
    for i in order[:left]:
        base[i] += 1
    return [1 + b for b in base]


class RecordWriter:
    """Collects record rows (tuples in COLUMNS order) and writes them as Parquet parts.

    `add` is cheap (a list append); `maybe_flush` hands a full batch to a single worker thread;
    `close` writes the rest and waits. Parts are numbered in write order.
    """

    def __init__(self, folder: str | Path, *, flush_every: int = 2000, flush_s: float = 2.0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flush_every = flush_every
        self.flush_s = flush_s
        self._rows: list[tuple] = []
        self._part = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="burstlab-records")
        self._pending: list[Future] = []
        self._lock = threading.Lock()
        self.written = 0

    def add(self, row: tuple) -> None:
        self._rows.append(row)

    def __len__(self) -> int:
        return len(self._rows)

    def maybe_flush(self, since_last_s: float) -> None:
        """Flush when the batch is big enough or `since_last_s` exceeds flush_s."""
        if len(self._rows) >= self.flush_every or (self._rows and since_last_s >= self.flush_s):
            self.flush()

    def flush(self) -> None:
        """Hand the collected rows to the writer thread."""
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        path = self.folder / f"part-{self._part:05d}.parquet"
        self._part += 1
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._pool.submit(self._write, rows, path))

    def _write(self, rows: list[tuple], path: Path) -> None:
        write_atomic(records_table(rows), path)
        with self._lock:
            self.written += len(rows)

    def close(self) -> None:
        """Write what is left and wait for every part to be on disk."""
        self.flush()
        for f in self._pending:
            f.result()
        self._pool.shutdown(wait=True)


def records_table(rows: list[tuple]) -> pa.Table:
    """Rows (tuples in COLUMNS order) as an Arrow table, converted SLICE_ROWS at a time."""
    tables = []
    for start in range(0, len(rows), SLICE_ROWS):
        cols = list(zip(*rows[start : start + SLICE_ROWS], strict=True))
        arrays = [pa.array(v, type=f.type) for v, f in zip(cols, ARROW_SCHEMA, strict=True)]
        tables.append(pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA))
    return pa.concat_tables(tables) if tables else ARROW_SCHEMA.empty_table()


def records_frame(rows: Iterable[tuple]) -> pl.DataFrame:
    """Rows (tuples in COLUMNS order) as a typed DataFrame."""
    return pl.from_arrow(records_table(list(rows)))  # type: ignore[return-value]


def read_records(run_dir: str | Path) -> pl.DataFrame:
    """Every record a run wrote, sorted by request id (an empty typed frame when none)."""
    folder = Path(run_dir) / "records"
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        return pl.DataFrame(schema=RECORD_SCHEMA)
    try:
        frame = pl.read_parquet(parts)
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(folder, f"cannot read the run's records: {first}") from None
    missing = [c for c in RECORD_SCHEMA if c not in frame.columns and c != "oversized"]
    if missing:
        raise InputError(folder, "not replay records", expected=f"the column(s) {missing}")
    if "oversized" not in frame.columns:  # a run recorded before the column existed
        frame = frame.with_columns(oversized=pl.lit(None, pl.Boolean))
    return frame.sort("req_id")
