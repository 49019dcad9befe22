"""Generated bad input for every ingest format (hypothesis): one test per source format.

Each case starts from a VALID file of the format (so most cases are "mostly good"), applies a
few mutations — bad cells (empty, text, huge, negative, NaN/inf, quotes, commas, newlines),
ragged rows, blank lines, duplicated and shuffled rows, header damage, broken JSON lines and
wrong JSON types, missing or mistyped Parquet columns — and writes it with CRLF or LF line
ends, a UTF-8 byte-order mark or not, quoted fields or not, and maybe gzip-compressed and cut
at a random byte. Then it calls the public entry point with a fresh data directory.

Property of every case: EITHER success, with rows read = kept + dropped, a Parquet file of the
canonical schema with no null in a required column, ``arrival_s`` sorted from 0.0, no NaN/inf,
metadata that agrees with the result; OR one BurstlabError, one line, naming the file, and no
Parquet file written. Never another exception; never a partial output. A case with no
mutation must succeed with every row kept and the expected arrival times.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from burstlab.parquet import read_metadata
from burstlab.schema import REQUIRED, arrow_schema
from burstlab.traces import ingest, ingest_generic
from fuzz.checks import finite_outputs, no_partial_outputs, outcome

# ---- values a mutation puts into a cell ----

HUGE = ["99999999999", "2147483648", "-2147483649", "9" * 25, "1e30", "9e18", "-9e18", "32768"]
NOT_NUMBERS = ["", " ", "abc", "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "-0", "0x1F"]
ODD_TEXT = ['"', '""', "a,b", '"1,2"', "é", "\t7\t", " 12 ", "1.5", "-5", "-1", "0", "null"]
CELLS = st.sampled_from(HUGE + NOT_NUMBERS + ODD_TEXT) | st.text(max_size=6)
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(min_value=-5, max_value=10**20), max_size=3),
    st.just({"a": 1}),
    st.just([[1, 2], [3]]),
)


@dataclass
class Table:
    """A generated text table: header and rows of cells, plus how it will be written."""

    header: list[str]
    rows: list[list[str]]
    mutations: int = 0  # how many mutations were applied (0: the file must ingest whole)
    notes: list[str] = field(default_factory=list)


def _csv_bytes(table: Table, draw) -> tuple[bytes, bool]:
    """Serialise with a drawn line ending, BOM, quoting and final newline; True when a cell
    that needs quotes went out without them (the file then no longer says what it meant)."""
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    quoting = draw(st.sampled_from(["none", "all", "minimal"]))

    def cell(text: str) -> str:
        if quoting == "all" or (quoting == "minimal" and any(c in text for c in ',"\r\n')):
            return '"' + text.replace('"', '""') + '"'
        return text

    lines = [",".join(cell(c) for c in row) for row in [table.header, *table.rows]]
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    if draw(st.booleans()):
        text = "\ufeff" + text
    cells = (c for row in [table.header, *table.rows] for c in row)
    broken = quoting == "none" and any(ch in c for c in cells for ch in ',"\r\n')
    return text.encode("utf-8"), broken


def _mutate_table(draw, table: Table) -> Table:
    """Apply 0–4 mutations (most cases get few): cells, raggedness, row order, header."""
    n = draw(st.integers(0, 4))
    for _ in range(n):
        kind = draw(
            st.sampled_from(
                [
                    "cell",
                    "cell",
                    "cell",
                    "short",
                    "long",
                    "blank",
                    "dup",
                    "shuffle",
                    "swap",
                    "header_drop",
                    "header_dup",
                    "header_case",
                    "comma_row",
                    "newline_cell",
                ]
            )
        )
        rows = table.rows
        if kind in {"cell", "short", "long", "dup", "swap", "newline_cell"} and not rows:
            continue
        i = draw(st.integers(0, max(len(rows) - 1, 0)))
        if kind == "cell":
            j = draw(st.integers(0, len(table.header) - 1))
            if j < len(rows[i]):
                rows[i][j] = draw(CELLS)
        elif kind == "short":
            rows[i] = rows[i][: draw(st.integers(0, max(len(rows[i]) - 1, 0)))]
        elif kind == "long":
            rows[i] = rows[i] + draw(st.lists(CELLS, min_size=1, max_size=3))
        elif kind == "blank":
            rows.insert(i, [""])
        elif kind == "dup":
            rows.insert(i, list(rows[i]))
        elif kind == "shuffle":
            table.rows = draw(st.permutations(rows))
        elif kind == "swap":
            k = draw(st.integers(0, len(rows) - 1))
            rows[i], rows[k] = rows[k], rows[i]
        elif kind == "header_drop":
            j = draw(st.integers(0, len(table.header) - 1))
            table.header = table.header[:j] + table.header[j + 1 :]
        elif kind == "header_dup":
            j = draw(st.integers(0, len(table.header) - 1))
            table.header = [*table.header, table.header[j]]
        elif kind == "header_case":
            j = draw(st.integers(0, len(table.header) - 1))
            table.header[j] = draw(
                st.sampled_from([table.header[j].upper(), f" {table.header[j]} ", "", "x"])
            )
        elif kind == "comma_row":
            rows.insert(i, [""] * len(table.header))
        elif kind == "newline_cell":
            j = draw(st.integers(0, len(rows[i]) - 1)) if rows[i] else 0
            if rows[i]:
                rows[i][j] = rows[i][j] + "\n" + draw(CELLS)
        table.mutations += 1
        table.notes.append(kind)
    return table


def _times(draw, n: int, *, unit: float = 1.0) -> list[float]:
    """Non-decreasing times with duplicates, starting at a drawn offset."""
    start = draw(st.integers(0, 10**6))
    gaps = draw(st.lists(st.sampled_from([0, 0, 1, 2, 5, 37]), min_size=n, max_size=n))
    out, t = [], start
    for g in gaps:
        t += g
        out.append(t * unit)
    return out


@dataclass
class Case:
    path: Path
    data_dir: Path
    clean: bool  # no mutation and no truncation: must succeed with every row kept
    expected_arrivals: list[float] | None  # for a clean case
    rows: int


def _bad_bytes(draw, payload: bytes) -> tuple[bytes, bool]:
    """Maybe put a byte that is not UTF-8 somewhere in a text file; True when it did."""
    if not payload or draw(st.integers(0, 7)) != 0:
        return payload, False
    at = draw(st.integers(0, len(payload)))
    return payload[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\x00"])) + payload[
        at:
    ], True


def _damage(draw, payload: bytes) -> tuple[bytes, bool]:
    """Maybe cut `payload` at a random byte or flip one byte in it; True when damaged."""
    kind = draw(st.sampled_from(["none", "none", "cut", "flip"]))
    if kind == "none" or not payload:
        return payload, False
    at = draw(st.integers(0, len(payload) - 1))
    if kind == "cut":
        return payload[:at], True
    flipped = bytes([payload[at] ^ draw(st.integers(1, 255))])
    return payload[:at] + flipped + payload[at + 1 :], True


def _write(draw, folder: Path, name: str, payload: bytes) -> tuple[Path, bool]:
    """Write text `payload` as `name`, maybe with a non-UTF-8 byte, maybe gzipped (``.gz``)
    and cut or corrupted at random; True when it is no longer the file it was."""
    payload, bad = _bad_bytes(draw, payload)
    if draw(st.integers(0, 5)) == 0:
        packed, damaged = _damage(draw, gzip.compress(payload))
        path = folder / f"{name}.gz"
        path.write_bytes(packed)
        return path, damaged or bad
    path = folder / name
    path.write_bytes(payload)
    return path, bad


@contextlib.contextmanager
def _folder(tmp_path: Path) -> Iterator[Path]:
    """A fresh folder for one case (hypothesis reuses the test's tmp_path across cases),
    removed when the case passes (a data directory is ~0.5 MB; a failing case's stays)."""
    case = Path(tempfile.mkdtemp(dir=tmp_path))
    yield case
    shutil.rmtree(case, ignore_errors=True)


STRICT = st.integers(0, 3).map(lambda k: k == 0)  # a quarter of the cases run --strict


def _check(entry: str, call, case: Case, *, strict: bool, table_kind: str = "requests") -> None:
    got = outcome(entry, call)
    parquet = list((case.data_dir / "parquet").rglob("*.parquet"))
    no_partial_outputs(case.data_dir)
    if got.error is not None:
        assert case.path.name in str(got.error), str(got.error)
        assert parquet == [], f"an error left {parquet}"
        assert not case.clean, f"a clean file failed: {got.error}"
        if "strict mode" in str(got.error):  # the first dropped row, found by a second scan
            assert got.error.line is not None and got.error.line >= 1, str(got.error)
        return
    result = got.result
    if strict:
        assert result.dropped == {}, result.dropped
    assert result.rows_read == result.rows_kept + sum(result.dropped.values())
    assert result.rows_kept > 0
    assert parquet == [result.path]
    frame = pl.read_parquet(result.path)
    assert frame.height == result.rows_kept
    assert frame.to_arrow().schema.equals(arrow_schema(table_kind))
    for name in REQUIRED[table_kind]:
        assert frame[name].null_count() == 0, f"null in required column {name}"
    if "hash_ids" in frame.columns:  # a list is whole or null, never a list with a hole
        holes = frame.select(pl.col("hash_ids").list.eval(pl.element().is_null().any()))
        assert not holes.to_series().explode().fill_null(False).any()
    arrivals = frame["arrival_s"]
    assert arrivals.is_sorted() and arrivals[0] == 0.0, arrivals.head(10).to_list()
    finite_outputs(case.data_dir)
    meta = read_metadata(result.path)
    assert (meta["rows_read"], meta["rows_kept"]) == (result.rows_read, result.rows_kept)
    assert meta["rows_dropped"] == result.dropped
    assert meta["input_time_sorted"] is not None and meta["rows_moved"] is not None
    assert 0 <= meta["rows_moved"] <= result.rows_kept
    if meta["input_time_sorted"]:
        assert meta["rows_moved"] == 0
    if case.clean:
        assert (result.rows_read, result.rows_kept) == (case.rows, case.rows), result.dropped
        if case.expected_arrivals is not None:
            assert arrivals.to_list() == case.expected_arrivals


# ---- BurstGPT CSV ----

BURSTGPT_V1 = [
    "Timestamp",
    "Model",
    "Request tokens",
    "Response tokens",
    "Total tokens",
    "Log Type",
]
BURSTGPT_V3 = ["Timestamp", "Session ID", "Elapsed time", *BURSTGPT_V1[1:]]


@st.composite
def burstgpt_files(draw, folder: Path) -> tuple[str, Case]:
    v3 = draw(st.booleans())
    n = draw(st.integers(1, 40))
    times = _times(draw, n)
    rows = []
    for t in times:
        req, resp = draw(st.integers(0, 5000)), draw(st.integers(0, 2000))
        model = draw(st.sampled_from(["ChatGPT", "GPT-4"]))
        log = draw(st.sampled_from(["Conversation log", "API log"]))
        row = [str(int(t)), model, str(req), str(resp), str(req + resp), log]
        if v3:
            row = [row[0], f"s{draw(st.integers(0, 9))}", f"{draw(st.floats(0, 60)):.3f}", *row[1:]]
        rows.append(row)
    table = _mutate_table(draw, Table(list(BURSTGPT_V3 if v3 else BURSTGPT_V1), rows))
    payload, broken = _csv_bytes(table, draw)
    path, cut = _write(draw, folder, "BurstGPT_3.csv" if v3 else "BurstGPT_1.csv", payload)
    clean = table.mutations == 0 and not cut and not broken
    expected = [t - times[0] for t in times]
    return ("burstgpt-3" if v3 else "burstgpt-1"), Case(path, folder / "data", clean, expected, n)


@given(data=st.data())
def test_burstgpt_csv(tmp_path, data):
    with _folder(tmp_path) as folder:
        source, case = data.draw(burstgpt_files(folder))
        strict = data.draw(STRICT)
        _check(
            "ingest burstgpt (CSV)",
            lambda: ingest(source, [case.path], data_dir=case.data_dir, strict=strict),
            case,
            strict=strict,
        )


# ---- Azure LLM CSV (2023, 2024 and 2025 timestamp formats) ----

_AZURE = {
    "azure-llm-2023-code": ("AzureLLMInferenceTrace_code.csv", False),
    "azure-llm-2024-conv": ("AzureLLMInferenceTrace_conv_1week.csv", False),
    "azure-llm-2025-multimodal": ("AzureLMMInferenceTrace_multimodal.csv", True),
}


def _azure_stamp(source: str, ticks: int) -> str:
    """`ticks` (100 ns after 18:00 on the dataset's day) in its own timestamp format."""
    seconds, rest = divmod(ticks, 10**7)
    day = {"2023": datetime(2023, 11, 16, 18), "2024": datetime(2024, 5, 10, 18)}
    when = day.get(source.split("-")[2], datetime(2025, 5, 1, 18)) + timedelta(seconds=seconds)
    if source.startswith("azure-llm-2023"):
        return f"{when:%Y-%m-%d %H:%M:%S}.{rest:07d}"
    if source.startswith("azure-llm-2024"):
        frac = f".{rest // 10:06d}" if rest % 3 else ""
        return f"{when:%Y-%m-%d %H:%M:%S}{frac}+00:00"
    return f"{when:%Y-%m-%dT%H:%M:%S}.{rest // 10**4:03d}Z"


AZURE_STAMPS = st.sampled_from(
    [
        "2300-01-01 00:00:00.0000000",
        "0001-01-01 00:00:00.0000000",
        "2200-06-01 00:00:00.0000000",
        "2023-02-30 00:00:00",
        "2023-11-16 23:59:60.0000000",
        "2023-11-16T18:00:00Z",
        "2024-05-10 00:00:00+25:00",
        "2023-11-16 18:00:00.12345678901234",
        "99999-01-01 00:00:00",
        "yesterday",
    ]
)


@st.composite
def azure_files(draw, folder: Path) -> tuple[str, Case]:
    source = draw(st.sampled_from(sorted(_AZURE)))
    name, images = _AZURE[source]
    n = draw(st.integers(1, 40))
    ticks = [int(t) for t in _times(draw, n, unit=draw(st.sampled_from([1, 10**4, 10**7])))]
    header = (
        ["TIMESTAMP", "NumImages", "ContextTokens", "GeneratedTokens"]
        if images
        else ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
    )
    rows = []
    for t in ticks:
        tokens = [str(draw(st.integers(0, 8000))), str(draw(st.integers(0, 800)))]
        row = [_azure_stamp(source, t), *tokens]
        if images:
            row.insert(1, str(draw(st.integers(0, 4))))
        rows.append(row)
    table = _mutate_table(draw, Table(header, rows))
    if table.rows and draw(st.booleans()):  # a timestamp nobody should accept as-is
        row = table.rows[draw(st.integers(0, len(table.rows) - 1))]
        if row:
            row[0] = draw(AZURE_STAMPS)
            table.mutations += 1
    payload, broken = _csv_bytes(table, draw)
    path, cut = _write(draw, folder, name, payload)
    clean = table.mutations == 0 and not cut and not broken
    # 2024 keeps µs, 2025 ms: the expected arrivals are those of the written stamps
    expected = None if not clean else _azure_expected(source, ticks)
    return source, Case(path, folder / "data", clean, expected, n)


def _azure_expected(source: str, ticks: list[int]) -> list[float]:
    if source.startswith("azure-llm-2024"):
        ns = [
            (t // 10**7) * 10**9 + ((t % 10**7) // 10 * 1000 if (t % 10**7) % 3 else 0)
            for t in ticks
        ]
    elif source.startswith("azure-llm-2025"):
        ns = [(t // 10**7) * 10**9 + (t % 10**7) // 10**4 * 10**6 for t in ticks]
    else:
        ns = [t * 100 for t in ticks]
    ordered = sorted(ns)
    return [(t - ordered[0]) / 1e9 for t in ordered]


@given(data=st.data())
def test_azure_llm_csv(tmp_path, data):
    with _folder(tmp_path) as folder:
        source, case = data.draw(azure_files(folder))
        strict = data.draw(STRICT)
        _check(
            "ingest azure-llm (CSV)",
            lambda: ingest(source, [case.path], data_dir=case.data_dir, strict=strict),
            case,
            strict=strict,
        )


# ---- JSON Lines (Mooncake, generic) ----


def _jsonl_bytes(draw, objects: list[Any]) -> tuple[bytes, int]:
    """One JSON value a line; mutations break lines, add blanks, garbage and wrong types."""
    lines = [json.dumps(o) for o in objects]
    mutations = 0
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["cut", "blank", "garbage", "shuffle", "dup", "array"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "cut":
            lines[i] = lines[i][: draw(st.integers(0, max(len(lines[i]) - 1, 0)))]
        elif kind == "blank":
            lines.insert(i, draw(st.sampled_from(["", "   ", "\t"])))
        elif kind == "garbage":
            lines.insert(
                i, draw(st.sampled_from(["not json", "{", "}", "[1,2]", "null", "3", '"x"', "{}"]))
            )
        elif kind == "shuffle":
            lines = draw(st.permutations(lines))
        elif kind == "dup":
            lines.insert(i, lines[i])
        elif kind == "array":
            lines[i] = "[" + lines[i] + "]"
        mutations += 1
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode("utf-8"), mutations


def _mutate_objects(draw, objects: list[dict[str, Any]], keys: list[str]) -> int:
    """Wrong types, missing and extra keys, NaN/inf/huge numbers in 0–4 objects."""
    n = draw(st.integers(0, 4)) if objects else 0
    for _ in range(n):
        obj = objects[draw(st.integers(0, len(objects) - 1))]
        kind = draw(st.sampled_from(["value", "value", "drop", "extra"]))
        key = draw(st.sampled_from(keys))
        if kind == "value":
            obj[key] = draw(JSON_VALUES)
        elif kind == "drop":
            obj.pop(key, None)
        else:
            obj[draw(st.text(max_size=4))] = draw(JSON_VALUES)
    return n


@st.composite
def mooncake_files(draw, folder: Path) -> Case:
    n = draw(st.integers(1, 40))
    times = [int(t) for t in _times(draw, n, unit=draw(st.sampled_from([1, 3000])))]
    objects = [
        {
            "timestamp": t,
            "input_length": draw(st.integers(0, 20000)),
            "output_length": draw(st.integers(0, 2000)),
            "hash_ids": draw(st.lists(st.integers(0, 10**6), max_size=4)),
        }
        for t in times
    ]
    changed = _mutate_objects(
        draw, objects, ["timestamp", "input_length", "output_length", "hash_ids"]
    )
    payload, broken = _jsonl_bytes(draw, objects)
    path, cut = _write(draw, folder, "conversation_trace.jsonl", payload)
    clean = changed == 0 and broken == 0 and not cut  # a BOM is fine
    expected = [(t - times[0]) / 1e3 for t in times]
    return Case(path, folder / "data", clean, expected, n)


@given(data=st.data())
def test_mooncake_jsonl(tmp_path, data):
    with _folder(tmp_path) as folder:
        case = data.draw(mooncake_files(folder))
        strict = data.draw(STRICT)
        _check(
            "ingest mooncake (JSONL)",
            lambda: ingest(
                "mooncake-conversation", [case.path], data_dir=case.data_dir, strict=strict
            ),
            case,
            strict=strict,
        )


# ---- generic: CSV, JSONL, Parquet with a user mapping and time unit ----

_UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_DATETIME_FORMATS = {
    "%Y-%m-%dT%H:%M:%S%.f": "{d}T{h}",
    "%d/%m/%Y %H:%M:%S%.f": "{dmy} {h}",  # not %Y-first: the second, µs parse guards it
}


@dataclass
class Generic:
    """A generated generic layout: the mapping, the time unit/format, and typed rows."""

    mapping: dict[str, str]
    time_unit: str
    time_format: str | None
    columns: dict[str, list[Any]]  # source column -> values (valid base values)
    expected: list[float]
    n: int


@st.composite
def generic_layouts(draw) -> Generic:
    n = draw(st.integers(1, 40))
    unit = draw(st.sampled_from([*_UNITS, "datetime"]))
    fmt = draw(st.sampled_from(sorted(_DATETIME_FORMATS))) if unit == "datetime" else None
    seconds = _times(draw, n, unit=draw(st.sampled_from([1.0, 0.25])))
    if unit == "datetime":
        assert fmt is not None
        ts: list[Any] = [_stamp(fmt, s) for s in seconds]
    else:
        ts = [s * _UNITS[unit] for s in seconds]
        if all(float(v).is_integer() for v in ts):
            ts = [int(v) for v in ts]
    columns: dict[str, list[Any]] = {
        "ts": ts,
        "p": [draw(st.integers(0, 9000)) for _ in range(n)],
        "c": [draw(st.integers(0, 900)) for _ in range(n)],
    }
    mapping = {"arrival_s": "ts", "input_tokens": "p", "output_tokens": "c"}
    for canonical, raw, values in (
        ("model", "m", st.sampled_from(["a", "b"])),
        ("source_latency_s", "lat", st.floats(0, 100)),
        ("failed", "fail", st.sampled_from(["true", "false", "1", "0"])),
        ("num_images", "img", st.integers(0, 5)),
        ("session_id", "sess", st.sampled_from(["x", "y"])),
        ("hash_ids", "h", st.lists(st.integers(0, 10**6), max_size=4)),
    ):
        if draw(st.booleans()):
            mapping[canonical] = raw
            columns[raw] = [draw(values) for _ in range(n)]
    ordered = sorted(seconds)
    expected = [s - ordered[0] for s in ordered]
    return Generic(mapping, unit, fmt, columns, expected, n)


def _stamp(fmt: str, seconds: float) -> str:
    base = 1_700_000_000 + seconds
    day, rest = divmod(base, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    d = date(1970, 1, 1) + timedelta(days=int(day))
    hms = f"{int(h):02d}:{int(m):02d}:{s:06.3f}"
    return _DATETIME_FORMATS[fmt].format(d=d.isoformat(), dmy=d.strftime("%d/%m/%Y"), h=hms)


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list) else str(value)


def _call_generic(layout: Generic, case: Case, strict: bool):
    return lambda: ingest_generic(
        [case.path],
        layout.mapping,
        time_unit=layout.time_unit,
        time_format=layout.time_format,
        data_dir=case.data_dir,
        strict=strict,
    )


@st.composite
def generic_csv_files(draw, folder: Path) -> tuple[Generic, Case]:
    layout = draw(generic_layouts())
    header = list(layout.columns)
    rows = [[_text(layout.columns[c][i]) for c in header] for i in range(layout.n)]
    table = _mutate_table(draw, Table(header, rows))
    payload, broken = _csv_bytes(table, draw)
    path, cut = _write(draw, folder, "trace.csv", payload)
    clean = table.mutations == 0 and not cut and not broken
    return layout, Case(path, folder / "data", clean, layout.expected, layout.n)


@given(data=st.data())
def test_generic_csv(tmp_path, data):
    with _folder(tmp_path) as folder:
        layout, case = data.draw(generic_csv_files(folder))
        strict = data.draw(STRICT)
        _check("ingest_generic (CSV)", _call_generic(layout, case, strict), case, strict=strict)


@st.composite
def generic_jsonl_files(draw, folder: Path) -> tuple[Generic, Case]:
    layout = draw(generic_layouts())
    objects = [{c: v[i] for c, v in layout.columns.items()} for i in range(layout.n)]
    changed = _mutate_objects(draw, objects, list(layout.columns))
    payload, broken = _jsonl_bytes(draw, objects)
    path, cut = _write(draw, folder, "trace.jsonl", payload)
    clean = changed == 0 and broken == 0 and not cut  # a BOM is fine
    return layout, Case(path, folder / "data", clean, layout.expected, layout.n)


@given(data=st.data())
def test_generic_jsonl(tmp_path, data):
    with _folder(tmp_path) as folder:
        layout, case = data.draw(generic_jsonl_files(folder))
        strict = data.draw(STRICT)
        _check("ingest_generic (JSONL)", _call_generic(layout, case, strict), case, strict=strict)


_MISTYPES = [
    pl.String,
    pl.Float64,
    pl.Float32,
    pl.Int8,
    pl.UInt64,
    pl.Boolean,
    pl.Date,
    pl.Datetime("us"),
    pl.Duration("ms"),
    pl.List(pl.Int64),
    pl.Null,
    pl.Categorical,
    pl.Struct({"a": pl.Int64}),
    pl.Decimal(20, 2),
]


def _retype(values: list[Any], dtype) -> pl.Series:
    """`values` as a column of `dtype`, whatever it takes (a failed cast is all nulls)."""
    base = pl.Series("v", [str(v) for v in values])
    if dtype == pl.Null:
        return pl.Series("v", [None] * len(values))
    if dtype == pl.List(pl.Int64):
        return pl.Series("v", [[i, i + 1] for i in range(len(values))])
    if isinstance(dtype, pl.Struct):
        return pl.Series("v", [{"a": i} for i in range(len(values))])
    if dtype == pl.Categorical:
        return base.cast(pl.Categorical)
    if dtype == pl.Boolean:
        return pl.Series("v", [i % 2 == 0 for i in range(len(values))])
    if dtype in (pl.Date, pl.Datetime("us"), pl.Duration("ms")):
        return pl.Series("v", list(range(len(values)))).cast(pl.Int64).cast(dtype)
    return base.cast(pl.Float64, strict=False).cast(dtype, strict=False)


@st.composite
def generic_parquet_files(draw, folder: Path) -> tuple[Generic, Case]:
    layout = draw(generic_layouts())
    frame = pl.DataFrame({c: v for c, v in layout.columns.items()}, strict=False)
    mutations = 0
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(
            st.sampled_from(
                ["drop", "retype", "nulls", "nan", "huge", "shuffle", "empty", "rename"]
            )
        )
        col = draw(st.sampled_from(frame.columns)) if frame.columns else None
        if col is None:
            break
        if kind == "drop":
            frame = frame.drop(col)
        elif kind == "retype":
            frame = frame.with_columns(
                _retype(frame[col].to_list(), draw(st.sampled_from(_MISTYPES))).alias(col)
            )
        elif kind == "nulls" and frame.height:
            i = draw(st.integers(0, frame.height - 1))
            frame = frame.with_columns(
                pl.when(pl.int_range(pl.len()) == i).then(None).otherwise(pl.col(col)).alias(col)
            )
        elif kind in {"nan", "huge"} and frame.height and frame[col].dtype.is_numeric():
            if kind == "nan":
                dtype, values = pl.Float64, [math.nan, math.inf, -math.inf, 1e30, -1e30, 9.3e18]
            else:
                dtype, values = pl.Int64, [2**31, 2**40, -(2**31) - 1, 2**63 - 1, -(2**63)]
            i = draw(st.integers(0, frame.height - 1))
            column = frame[col].cast(dtype, strict=False).scatter(i, draw(st.sampled_from(values)))
            frame = frame.with_columns(column.alias(col))
        elif kind == "shuffle":
            frame = frame.sample(fraction=1.0, shuffle=True, seed=draw(st.integers(0, 99)))
        elif kind == "empty":
            frame = frame.head(0)
        elif kind == "rename":
            frame = frame.rename({col: col.upper()})
        mutations += 1
    buffer = pa.BufferOutputStream()
    pq.write_table(frame.to_arrow(), buffer)
    payload = buffer.getvalue().to_pybytes()
    damaged = False
    if draw(st.integers(0, 3)) == 0:
        payload, damaged = _damage(draw, payload)
    path = folder / "trace.parquet"
    path.write_bytes(payload)
    clean = mutations == 0 and not damaged
    return layout, Case(path, folder / "data", clean, layout.expected, layout.n)


@given(data=st.data())
def test_generic_parquet(tmp_path, data):
    with _folder(tmp_path) as folder:
        layout, case = data.draw(generic_parquet_files(folder))
        strict = data.draw(STRICT)
        _check("ingest_generic (Parquet)", _call_generic(layout, case, strict), case, strict=strict)
