"""Open a raw trace file as a lazy, streaming frame of the columns an adapter asks for.

Every reader returns the adapter's columns (typed; a value that does not parse becomes null,
so the engine can count it as a drop), and with ``line=True`` also ``_line``: the 1-based line
of the row in the file. Only a ``--strict`` error needs it, so the engine asks for it only on
that path (a second scan) instead of carrying a column through every row it writes.
Compressed files (``.gz``, ``.xz``, ``.bz2``) are decompressed in a stream to a temporary
file first, so a truncated archive fails loudly before anything is written. Header problems
raise InputError naming the file and the expected vs found columns.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from burstlab.errors import InputError

LINE = "_line"
#: Text is decoded leniently: a byte that is not UTF-8 becomes U+FFFD, so one bad byte costs
#: at most its row (a number it sits in no longer parses), never the whole file.
LOSSY = "utf8-lossy"


@dataclass(frozen=True)
class ColumnSpec:
    """The raw columns a reader must return: required, optional (if present), and for wide
    tables the type every other column is read as."""

    required: Mapping[str, pl.DataType]
    optional: Mapping[str, pl.DataType] = field(default_factory=dict)
    wide_type: pl.DataType | None = None

    def wanted(self, found: list[str]) -> dict[str, pl.DataType]:
        """The columns to read from a file whose header is `found`."""
        out = {**self.required, **{k: v for k, v in self.optional.items() if k in found}}
        if self.wide_type is not None:
            out.update({k: self.wide_type for k in found if k not in out})
        return out


_OPENERS = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}


@contextlib.contextmanager
def decompressed(path: Path, workdir: Path) -> Iterator[Path]:
    """Yield a plain file for `path`: itself, or a streamed decompression of it in `workdir`."""
    opener = _OPENERS.get(path.suffix.lower())
    if opener is None:
        yield path
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".raw", dir=workdir)
    out = Path(tmp)
    try:
        with opener(path, "rb") as src, open(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 22)
    except (EOFError, OSError, lzma.LZMAError, zlib.error) as exc:  # zlib: a damaged deflate
        out.unlink(missing_ok=True)
        raise InputError(
            path, f"cannot decompress ({exc}); the download may be truncated or damaged"
        ) from None
    try:
        yield out
    finally:
        out.unlink(missing_ok=True)


def _line(wanted: bool) -> list[str]:
    return [LINE] if wanted else []


def _check_columns(found: list[str], required: Mapping[str, pl.DataType], origin: Path) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        raise InputError(
            origin,
            f"missing column(s) {missing} — is this the right source for this file?",
            expected=list(required),
            found=found,
        )


def scan_csv(
    path: Path, spec: ColumnSpec, origin: Path | None = None, *, line: bool = False
) -> pl.LazyFrame:
    """A CSV (any line ending, final newline or not) as a lazy frame of the wanted columns."""
    origin = origin or path
    try:
        header = pl.scan_csv(path, infer_schema=False, encoding=LOSSY).collect_schema().names()
    except pl.exceptions.NoDataError:
        raise InputError(origin, "empty file: no header and no rows") from None
    header = [h.strip().lstrip("\ufeff") for h in header]  # spaces, a UTF-8 byte-order mark
    _check_columns(header, spec.required, origin)
    wanted = spec.wanted(header)
    lf = pl.scan_csv(
        path,
        infer_schema=False,
        new_columns=header,
        schema_overrides=wanted,
        ignore_errors=True,  # a value that does not parse becomes null: counted as a drop
        encoding=LOSSY,
        row_index_name=LINE if line else None,
        row_index_offset=2,  # line 1 is the header
        truncate_ragged_lines=True,
    )
    return lf.select(*_line(line), *wanted)


def parse_list(text: pl.Expr, dtype: pl.List) -> pl.Expr:
    """A JSON-style list in text (``[1, 2, 3]``) as a list of ``dtype.inner``.

    Null — not available, like any cell that does not parse — when the text is not a list or
    one of its items does not parse (``[1, "a"]``, ``[1e30]``, nested lists): a list with a
    hole in it would be a different list.
    """
    body = text.str.strip_chars()
    is_list = body.str.starts_with("[") & body.str.ends_with("]")
    items = (
        body.str.strip_prefix("[")
        .str.strip_suffix("]")
        .str.split(",")
        .list.eval(pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != ""))
    )
    values = items.list.eval(pl.element().cast(dtype.inner, strict=False))
    holes = values.list.eval(pl.element().is_null().any()).list.first()
    return pl.when(is_list & ~holes).then(values)


def _json_value(key: str, dtype: pl.DataType) -> pl.Expr:
    text = pl.col("_json").str.json_path_match(f"$.{key}")
    if isinstance(dtype, pl.List):
        return parse_list(text, dtype).alias(key)
    return text.cast(dtype, strict=False).alias(key)


def scan_jsonl(
    path: Path, spec: ColumnSpec, origin: Path | None = None, *, line: bool = False
) -> pl.LazyFrame:
    """JSON Lines as a lazy frame; a malformed line yields nulls (a counted drop), not a crash."""
    origin = origin or path
    first = None
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                try:  # as polars reads the lines: byte-order mark skipped, bad bytes replaced
                    first = json.loads(raw.decode("utf-8-sig", errors="replace"))
                except json.JSONDecodeError as exc:
                    raise InputError(origin, f"not JSON Lines ({exc.msg})", line=number) from None
                break
    if first is None:
        raise InputError(origin, "empty file: no JSON lines")
    if not isinstance(first, dict):
        raise InputError(origin, "not JSON Lines of objects", line=1, found=type(first).__name__)
    _check_columns(list(first), spec.required, origin)
    wanted = spec.wanted(list(first))
    lines = pl.scan_csv(
        path,
        has_header=False,
        new_columns=["_json"],
        separator="\x1f",
        quote_char=None,
        infer_schema=False,
        encoding=LOSSY,
        row_index_name=LINE if line else None,
        row_index_offset=1,
    )
    # a UTF-8 byte-order mark before the first line (json.loads above accepts it, so must this)
    lines = lines.with_columns(pl.col("_json").str.strip_chars_start("\ufeff"))
    return lines.filter(pl.col("_json").str.strip_chars() != "").select(
        *_line(line), *[_json_value(k, t) for k, t in wanted.items()]
    )


def scan_parquet(
    path: Path, spec: ColumnSpec, origin: Path | None = None, *, line: bool = False
) -> pl.LazyFrame:
    """A Parquet file as a lazy frame of the wanted columns (``_line`` = row number, 1-based)."""
    origin = origin or path
    found = _checked_parquet(path, spec, origin)
    _check_columns(found, spec.required, origin)
    wanted = spec.wanted(found)
    try:
        schema = pl.scan_parquet(path).collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(origin, f"not a readable Parquet file ({_first_line(exc)})") from None
    lf = pl.scan_parquet(path, row_index_name=LINE if line else None, row_index_offset=1)
    return lf.select(
        *_line(line), *[_parquet_column(k, schema[k], t, origin) for k, t in wanted.items()]
    )


def _checked_parquet(path: Path, spec: ColumnSpec, origin: Path) -> list[str]:
    """The column names of a Parquet file, after pyarrow has decoded the columns to be read.

    polars' Parquet decoder panics on some damaged files, and aborts the whole process on
    others (a flipped byte in a page header); pyarrow rejects those with an exception. So
    pyarrow reads the footer and streams the wanted columns once (bounded memory; ~0.35 s
    per 5 M rows of three columns) before polars sees the file.
    """
    try:
        meta = pq.ParquetFile(path)
        found = meta.schema_arrow.names
        columns = [c for c in spec.wanted(found) if c in found]
        for _ in meta.iter_batches(batch_size=1 << 16, columns=columns):
            pass
    except (pa.ArrowException, OSError, ValueError, IndexError) as exc:
        raise InputError(origin, f"not a readable Parquet file ({_first_line(exc)})") from None
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, (pl.Categorical, pl.Enum))


def _parquet_column(name: str, have: pl.DataType, want: pl.DataType, origin: Path) -> pl.Expr:
    """A typed Parquet column as the type a reader promises, when the two mean the same thing.

    Numbers from numbers or text (text that does not parse becomes null, as in a CSV); text
    from text, numbers, booleans or dates; lists from lists of numbers. Anything else —
    a struct, a list where a number belongs, a date or a boolean as a count — is an
    InputError naming the column, never a polars error or a silently wrong value (polars
    "casts" a struct to a struct, a date to days).
    """
    col = pl.col(name)
    if have == pl.Null or have == want:
        return col.cast(want, strict=False)
    if _is_text(have):
        col, have = col.cast(pl.String), pl.String()
    if want.is_numeric():
        ok = have.is_numeric() or have.is_decimal() or have == pl.String
    elif want == pl.String:
        ok = have.is_numeric() or have in (pl.String, pl.Boolean, pl.Date) or have.is_decimal()
        ok = ok or isinstance(have, pl.Datetime)
    elif isinstance(want, pl.List):
        inner = have.inner if isinstance(have, (pl.List, pl.Array)) else None
        ok = inner is not None and (inner.is_numeric() or inner == pl.Null)
    else:
        ok = False
    if not ok:
        raise InputError(
            origin,
            "column of a type that cannot be read as the one needed",
            field=name,
            expected=str(want),
            found=str(have),
        )
    return col.cast(want, strict=False).alias(name)


READERS = {"csv": scan_csv, "jsonl": scan_jsonl, "parquet": scan_parquet}


def peek_columns(path: Path, fmt: str) -> list[str] | None:
    """The column names of a file without reading it (None when they cannot be read).

    Used to tell which dataset of a family a file is when its name does not say.
    """
    opener = _OPENERS.get(path.suffix.lower(), open)
    try:
        if fmt == "parquet":
            return pl.scan_parquet(path).collect_schema().names()
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
        if fmt == "jsonl":
            obj = json.loads(first)
            return list(obj) if isinstance(obj, dict) else None
        return [c.strip().strip('"') for c in first.rstrip("\r\n").split(",")]
    except (OSError, EOFError, ValueError, pl.exceptions.PolarsError):
        return None
