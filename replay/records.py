"""Per-request records (docs/design.md §3), streamed to Parquet parts while the run goes on.

Keeping raw records only in memory means a crash or Ctrl-C loses the run; so every `flush_every`
records or `flush_s` seconds the finished records are written to `records/part-NNNNN.parquet`
(atomically: temp file, then rename) on a worker thread, off the event loop. All times are
seconds on the run clock (0 = run start, monotonic); `run.json` holds the wall-clock start.

The event loop never builds Python objects for the writer to convert: `RecordBuffer` keeps the
rows in typed columns (`array.array` per numeric column, one flat value array plus offsets per
list column, lists only for strings), generated from RECORD_SCHEMA, and a flush swaps in fresh
columns — the hand-off is a few pointer moves, and the worker turns typed buffers into Arrow
arrays (numpy views, no per-value Python work) instead of walking every chunk time as a Python
float while holding the GIL.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
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
    "worker_id": pl.Int16(),  # the client process that sent it (0 for a single-process run)
    # prompt tokens the server served from its prefix cache (usage.prompt_tokens_details
    # .cached_tokens, llama.cpp timings.cache_n); null when the server does not report it
    "prompt_tokens_cached": pl.Int32(),
    # prompt tokens the trace's hash_ids mean to be cached (prompts.intended_cached); null
    # without hash_ids
    "prompt_tokens_intended_cached": pl.Int32(),
}
COLUMNS = tuple(RECORD_SCHEMA)
ARROW_SCHEMA = pl.DataFrame(schema=RECORD_SCHEMA).to_arrow().schema
#: Rows of a string column converted per pyarrow call on the writer thread: converting Python
#: strings holds the GIL, so small slices let the event loop take it back between slices.
SLICE_ROWS = 1024


def chunk_tokens(chars: Sequence[int], total: int | None) -> list[int]:
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


#: Stand-ins for null in typed columns: integers (no record field gets near it), floats (no
#: record time or count is NaN), booleans (stored as int8: 1, 0, -1).
INT_NULL = -(1 << 63)
_INT_TYPES = {pl.Int8: "i1", pl.Int16: "i2", pl.Int32: "i4", pl.Int64: "i8"}


def _kind(dtype: pl.DataType) -> str:
    """How a RECORD_SCHEMA column is buffered: int, float, bool, str or list:<inner kind>."""
    if isinstance(dtype, pl.List):
        inner = _kind(dtype.inner)  # type: ignore[arg-type]
        if inner not in ("int", "float"):
            raise TypeError(f"record list columns hold numbers, not {dtype}")
        return "list:" + inner
    if dtype.base_type() in _INT_TYPES:
        return "int"
    if dtype.base_type() == pl.Float64:
        return "float"
    if dtype.base_type() == pl.Boolean:
        return "bool"
    if dtype.base_type() == pl.String:
        return "str"
    raise TypeError(f"no record buffer for column type {dtype}")


KINDS = tuple(_kind(t) for t in RECORD_SCHEMA.values())


def _new_column(kind: str) -> Any:
    if kind == "int":
        return array("q")
    if kind == "float":
        return array("d")
    if kind == "bool":
        return array("b")
    if kind == "str":
        return []
    values = array("q") if kind == "list:int" else array("d")
    return (values, array("q", [0]), array("b"))  # values, offsets, validity


_ROW_CODE = {
    "int": "    a{k}(INT_NULL if x{k} is None else x{k})",
    "float": "    a{k}(NAN if x{k} is None else x{k})",
    "bool": "    a{k}(-1 if x{k} is None else 1 if x{k} else 0)",
    "str": "    a{k}(x{k})",
    "list": (
        "    if x{k} is None:\n        m{k}(0)\n    else:\n        m{k}(1)\n        e{k}(x{k})\n"
        "    o{k}(len(v{k}))"
    ),
}


def _adder_source(kinds: tuple[str, ...]) -> str:
    """Python source of `make(cols) -> add(row)`: one straight-line function that appends a row
    (a tuple in COLUMNS order) to typed columns, with no per-column call or loop overhead."""
    names = ", ".join(f"x{k}" for k in range(len(kinds)))
    head = ["def make(cols):"]
    for k, kind in enumerate(kinds):
        if kind.startswith("list"):
            head.append(f"    v{k}, o{k}, m{k} = cols[{k}]")
            head.append(f"    e{k}, o{k}, m{k} = v{k}.extend, o{k}.append, m{k}.append")
        else:
            head.append(f"    a{k} = cols[{k}].append")
    body = [
        f"    def add(row):\n        if len(row) < {len(kinds)}:\n"
        f"            row = (*row, *(None,) * ({len(kinds)} - len(row)))\n"
        f"        ({names},) = row"
    ]
    for k, kind in enumerate(kinds):
        code = _ROW_CODE["list" if kind.startswith("list") else kind].format(k=k)
        body.append("\n".join("    " + line for line in code.split("\n")))
    return "\n".join(head) + "\n" + "\n".join(body) + "\n    return add\n"


def _compile_maker(kinds: tuple[str, ...]) -> Callable[[list], Callable[[tuple], None]]:
    scope: dict[str, Any] = {"INT_NULL": INT_NULL, "NAN": math.nan}
    exec(compile(_adder_source(kinds), "<record-buffer>", "exec"), scope)
    return scope["make"]


class RecordBuffer:
    """Record rows in typed columns, generated from RECORD_SCHEMA (an added column works).

    `add(row)` appends one tuple in COLUMNS order (None = null, and columns missing at the end
    of a shorter tuple are null; list columns take any iterable of numbers, or None); `take()` returns the filled columns and starts fresh ones (the flush
    hand-off: no copy, no conversion); `to_table(cols, n)` converts them to Arrow.
    """

    _make = None  # compiled once per process, for the current RECORD_SCHEMA

    def __init__(self) -> None:
        if RecordBuffer._make is None or getattr(RecordBuffer, "_kinds", None) != KINDS:
            RecordBuffer._make = _compile_maker(KINDS)
            RecordBuffer._kinds = KINDS
        self._fresh()

    def _fresh(self) -> None:
        self.cols = [_new_column(k) for k in KINDS]
        self.add: Callable[[tuple], None] = RecordBuffer._make(self.cols)  # type: ignore[misc]

    def __len__(self) -> int:
        col, kind = self.cols[0], KINDS[0]
        return len(col[2]) if kind.startswith("list") else len(col)

    def take(self) -> tuple[list, int]:
        """(the filled columns, their row count); the buffer continues empty."""
        cols, n = self.cols, len(self)
        self._fresh()
        return cols, n


def _numpy_type(dtype: pa.DataType) -> np.dtype:
    """The numpy type of a numeric Arrow type (not `to_pandas_dtype`, see `_arrow`)."""
    if pa.types.is_floating(dtype):
        return np.dtype(f"f{dtype.bit_width // 8}")
    return np.dtype(f"i{dtype.bit_width // 8}")


def _validity(null: np.ndarray) -> tuple[pa.Buffer | None, int]:
    """An Arrow validity bitmap for a boolean null mask (None when nothing is null)."""
    count = int(null.sum())
    if not count:
        return None, 0
    return pa.py_buffer(np.packbits(~null, bitorder="little")), count


def _arrow(
    dtype: pa.DataType, values: np.ndarray, null: np.ndarray, children: list | None = None
) -> pa.Array:
    """An Arrow array straight from numpy buffers, zero-copy, no per-value work."""
    validity, count = _validity(null)
    buffers = [validity, pa.py_buffer(np.ascontiguousarray(values))]
    return pa.Array.from_buffers(dtype, len(null), buffers, null_count=count, children=children)


def _column(kind: str, dtype: pa.DataType, col: Any) -> pa.Array | pa.ChunkedArray:
    """One buffered column as Arrow (the writer thread's job)."""
    if kind == "float":
        values = np.frombuffer(col, dtype=np.float64)
        return _arrow(dtype, values, np.isnan(values))
    if kind == "int":
        values = np.frombuffer(col, dtype=np.int64)
        null = values == INT_NULL
        return _arrow(dtype, np.where(null, 0, values).astype(_numpy_type(dtype)), null)
    if kind == "bool":
        values = np.frombuffer(col, dtype=np.int8)
        return _arrow(dtype, np.packbits(values == 1, bitorder="little"), values < 0)
    if kind == "str":
        parts = [
            pa.array(col[i : i + SLICE_ROWS], type=dtype) for i in range(0, len(col), SLICE_ROWS)
        ]
        return pa.chunked_array(parts, type=dtype)
    values, offsets, valid = col
    inner = dtype.value_type  # type: ignore[attr-defined]
    flat = np.frombuffer(values, dtype=np.int64 if kind == "list:int" else np.float64)
    flat = flat.astype(_numpy_type(inner), copy=False)
    child = _arrow(inner, flat, np.zeros(len(flat), dtype=bool))
    offs = np.frombuffer(offsets, dtype=np.int64)
    if not pa.types.is_large_list(dtype):
        offs = offs.astype(np.int32)
    return _arrow(dtype, offs, np.frombuffer(valid, dtype=np.int8) == 0, children=[child])


def columns_table(cols: list, n: int) -> pa.Table:
    """Typed columns from `RecordBuffer.take()` as an Arrow table in ARROW_SCHEMA."""
    if n == 0:
        return ARROW_SCHEMA.empty_table()
    arrays = [
        _column(kind, field.type, col)
        for kind, field, col in zip(KINDS, ARROW_SCHEMA, cols, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


_WARM = False


def warm_pyarrow() -> None:
    """Make pyarrow's one-time first-conversion work happen now, on the calling thread.

    pyarrow's first `pa.array(...)` call in a process imports pandas when it is installed
    (measured: 0.4-0.6 s holding the GIL). Done by the writer thread at the first flush it
    stalls the event loop for that long mid-run; RecordWriter calls this before the clock
    starts instead.
    """
    global _WARM
    if not _WARM:
        pa.array([None, "x"], type=pa.large_string())
        _WARM = True


class RecordWriter:
    """Collects record rows (tuples in COLUMNS order) and writes them as Parquet parts.

    `add` is cheap (appends to typed columns, see RecordBuffer); `flush` hands the columns to a
    single worker thread; `close` writes the rest and waits. Parts are named
    `<prefix>-NNNNN.parquet`, numbered in write order.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        flush_every: int = 2000,
        flush_s: float = 2.0,
        prefix: str = "part",
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flush_every = flush_every
        self.flush_s = flush_s
        self.prefix = prefix
        self._buffer = RecordBuffer()
        warm_pyarrow()
        self._part = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="burstlab-records")
        self._pending: list[Future] = []
        self._lock = threading.Lock()
        self.written = 0

    def add(self, row: tuple) -> None:
        """Append one record (a tuple in COLUMNS order)."""
        self._buffer.add(row)

    def __len__(self) -> int:
        return len(self._buffer)

    def maybe_flush(self, since_last_s: float) -> None:
        """Flush when the batch is big enough or `since_last_s` exceeds flush_s."""
        n = len(self._buffer)
        if n >= self.flush_every or (n and since_last_s >= self.flush_s):
            self.flush()

    def flush(self) -> None:
        """Hand the collected rows to the writer thread (a swap of column buffers)."""
        if not len(self._buffer):
            return
        cols, n = self._buffer.take()
        path = self.folder / f"{self.prefix}-{self._part:05d}.parquet"
        self._part += 1
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._pool.submit(self._write, cols, n, path))

    def _write(self, cols: list, n: int, path: Path) -> None:
        write_atomic(columns_table(cols, n), path)
        with self._lock:
            self.written += n

    def close(self) -> None:
        """Write what is left and wait for every part to be on disk."""
        self.flush()
        for f in self._pending:
            f.result()
        self._pool.shutdown(wait=True)


def records_table(rows: Iterable[tuple]) -> pa.Table:
    """Rows (tuples in COLUMNS order) as an Arrow table."""
    buffer = RecordBuffer()
    for row in rows:
        buffer.add(row)
    return columns_table(*buffer.take())


def records_frame(rows: Iterable[tuple]) -> pl.DataFrame:
    """Rows (tuples in COLUMNS order) as a typed DataFrame."""
    return pl.from_arrow(records_table(rows))  # type: ignore[return-value]


def read_records(run_dir: str | Path) -> pl.DataFrame:
    """Every record a run wrote (every `*.parquet` part in `records/`), sorted by request id
    (an empty typed frame when none)."""
    folder = Path(run_dir) / "records"
    parts = sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
    if not parts:
        return pl.DataFrame(schema=RECORD_SCHEMA)
    try:
        frame = pl.read_parquet(parts)
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(folder, f"cannot read the run's records: {first}") from None
    missing = [c for c in RECORD_SCHEMA if c not in frame.columns and c not in LATER_COLUMNS]
    if missing:
        raise InputError(folder, "not replay records", expected=f"the column(s) {missing}")
    # a run recorded before a later column existed: its value then (unknown; one process)
    frame = frame.with_columns(
        pl.lit(value, RECORD_SCHEMA[name]).alias(name)
        for name, value in LATER_COLUMNS.items()
        if name not in frame.columns
    )
    return frame.select(COLUMNS).sort("req_id")


#: Record columns added after runs were first recorded, with what an older run means by them.
LATER_COLUMNS: dict[str, object] = {
    "oversized": None,
    "worker_id": 0,
    "prompt_tokens_cached": None,
    "prompt_tokens_intended_cached": None,
}
