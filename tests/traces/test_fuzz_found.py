"""Defects the generated bad-input suite (tests/fuzz/test_ingest_fuzz.py) found, one plain
example each, so they stay covered at the small "ci" profile too."""

from __future__ import annotations

import polars as pl
import pytest

from burstlab.errors import InputError
from burstlab.traces import ingest_generic

MAPPING = "arrival_s=ts,input_tokens=p,output_tokens=c"


@pytest.mark.parametrize(
    ("column", "values", "found"),
    [
        ("ts", [[0], [1]], "List(Int64)"),  # crashed: polars cannot cast a list to a number
        ("p", [{"a": 1}, {"a": 2}], "Struct"),  # "cast" silently to a struct
        ("ts", pl.Series([0, 1]).cast(pl.Date), "Date"),  # silently read as days
        ("c", [True, False], "Boolean"),  # silently read as 1 / 0 tokens
    ],
)
def test_generic_parquet_with_a_mistyped_column_names_it(tmp_path, data_dir, column, values, found):
    frame = pl.DataFrame({"ts": [0, 1], "p": [5, 6], "c": [7, 8]})
    frame = frame.with_columns(pl.Series(column, values))
    path = tmp_path / "trace.parquet"
    frame.write_parquet(path)
    with pytest.raises(InputError) as err:
        ingest_generic([path], MAPPING)
    text = str(err.value)
    assert text.startswith(f"{path}, {column}: ") and found in text and "\n" not in text
    assert not (data_dir / "parquet" / "requests").exists() or not list(
        (data_dir / "parquet" / "requests").iterdir()
    )


def test_generic_parquet_text_and_categorical_numbers_are_parsed(tmp_path, data_dir):
    frame = pl.DataFrame(
        {
            "ts": pl.Series(["0", "1", "x"]).cast(pl.Categorical),
            "p": ["5", "6", "7"],
            "c": pl.Series([7, 8, 9], dtype=pl.Decimal(10, 0)),
        }
    )
    path = tmp_path / "trace.parquet"
    frame.write_parquet(path)
    result = ingest_generic([path], MAPPING)
    assert (result.rows_kept, result.dropped) == (2, {"missing or unparsable ts": 1})
    assert pl.read_parquet(result.path)["input_tokens"].to_list() == [5, 6]


def test_csv_quote_that_never_closes_names_file_and_line(tmp_path, data_dir):
    """polars raised a ComputeError whose message held the rest of the file, many lines."""
    from burstlab.traces import ingest

    path = tmp_path / "AzureLMMInferenceTrace_multimodal.csv"
    path.write_text(
        "TIMESTAMP,NumImages,ContextTokens,GeneratedTokens\n"
        "2025-05-01T18:00:00.000Z,0,5,6\n2025-05-01T18:00:01.000Z,0,5,6\n"
        '",0,0,0\n2025-05-01T18:00:02.000Z,0,5,6\n'
    )
    with pytest.raises(InputError) as err:
        ingest("azure-llm-2025-multimodal", [path])
    assert (err.value.path, err.value.line) == (path, 4)
    assert "\n" not in str(err.value) and "malformed CSV" in str(err.value)
    assert not list((data_dir / "parquet").rglob("*.*"))


def test_gzip_with_a_damaged_byte_is_an_input_error(tmp_path, data_dir):
    """A flipped byte inside the deflate stream raised a bare zlib.error (a truncated file
    was already an InputError)."""
    import gzip

    from burstlab.traces import ingest

    text = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
    text += "".join(f"{i},ChatGPT,{i * 7 % 1000},{i % 50},{i},API log\n" for i in range(400))
    packed = bytearray(gzip.compress(text.encode(), mtime=0))
    packed[10] ^= 0xFF  # the first deflate byte: zlib.error "invalid distance too far back"
    path = tmp_path / "BurstGPT_1.csv.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(InputError, match="cannot decompress") as err:
        ingest("burstgpt-1", [path])
    assert err.value.path == path and "\n" not in str(err.value)
    assert not list((data_dir / "parquet").rglob("*.*"))
    assert not [p for p in (data_dir / "downloads").rglob("*") if p.is_file()]


def test_hash_ids_that_do_not_parse_are_null_not_lists_with_holes(tmp_path, data_dir):
    """An unparsable item was written as a null INSIDE the list ([None, -5, None]), and a
    value that is not a list at all as [None]."""
    from burstlab.traces import ingest

    path = tmp_path / "conversation_trace.jsonl"
    path.write_text(
        '{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [1, 2]}\n'
        '{"timestamp": 1, "input_length": 5, "output_length": 1, "hash_ids": "x"}\n'
        '{"timestamp": 2, "input_length": 5, "output_length": 1, "hash_ids": [1e30, -5, "a"]}\n'
        '{"timestamp": 3, "input_length": 5, "output_length": 1, "hash_ids": [[1, 2], [3]]}\n'
        '{"timestamp": 4, "input_length": 5, "output_length": 1, "hash_ids": []}\n'
    )
    result = ingest("mooncake-conversation", [path])
    assert result.rows_kept == 5  # the request happened; its prefix blocks are not known
    assert pl.read_parquet(result.path)["hash_ids"].to_list() == [[1, 2], None, None, None, []]


def test_generic_csv_can_map_hash_ids(tmp_path, data_dir):
    """polars cannot read a list column from a CSV: the ingest failed on any such mapping."""
    path = tmp_path / "trace.csv"
    path.write_text('ts,p,c,h\n0,1,2,"[1, 2]"\n1,1,2,[3]\n2,1,2,nope\n3,1,2,[]\n')
    result = ingest_generic([path], MAPPING + ",hash_ids=h")
    assert result.rows_kept == 4
    assert pl.read_parquet(result.path)["hash_ids"].to_list() == [[1, 2], [3], None, []]


def test_bytes_that_are_not_utf8_cost_their_row_at_most(tmp_path, data_dir):
    """A first JSON line with a non-UTF-8 byte raised a bare UnicodeDecodeError; elsewhere one
    such byte failed the whole file ("invalid utf-8 sequence", no line)."""
    from burstlab.traces import ingest

    jsonl = tmp_path / "conversation_trace.jsonl"
    jsonl.write_bytes(b'\xff{"timestamp": 0, "input_length": 5, "output_length": 1}\n')
    with pytest.raises(InputError) as err:
        ingest("mooncake-conversation", [jsonl])
    assert (err.value.path, err.value.line) == (jsonl, 1) and "not JSON Lines" in str(err.value)
    line = (
        b'{"timestamp": %d, "input_length": 5, "output_length": 1, "hash_ids": [], "x": "\xff"}\n'
    )
    jsonl.write_bytes(b"\xef\xbb\xbf" + line % 0 + line % 1000)  # and a byte-order mark
    assert ingest("mooncake-conversation", [jsonl]).rows_kept == 2
    csv = tmp_path / "BurstGPT_1.csv"
    csv.write_bytes(
        b"Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        b"1,Chat\xffGPT,5,6,11,API log\n2,ChatGPT,5\xff,6,11,API log\n3,ChatGPT,5,6,11,API log\n"
    )
    result = ingest("burstgpt-1", [csv])
    assert result.dropped == {"missing or non-integer token count": 1}
    assert pl.read_parquet(result.path)["model"].to_list() == ["Chat\ufffdGPT", "ChatGPT"]


def test_zip_with_a_damaged_member_is_an_input_error(tmp_path, data_dir):
    """A damaged deflate stream inside a zip member raised a bare zlib.error."""
    import zipfile

    from burstlab.traces import ingest

    text = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
    text += "".join(f"{i},ChatGPT,{i * 7 % 1000},{i % 50},{i},API log\n" for i in range(2000))
    path = tmp_path / "burstgpt.zip"
    member = zipfile.ZipInfo("BurstGPT_1.csv", (2024, 1, 1, 0, 0, 0))
    member.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, text)
    damaged = bytearray(path.read_bytes())
    damaged[44] ^= 0x55  # the member's first deflate byte: "invalid stored block lengths"
    path.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match="cannot unpack archive") as err:
        ingest("burstgpt", [path])
    assert err.value.path == path and "\n" not in str(err.value)
    assert not list((data_dir / "parquet").rglob("*.*"))


#: A 40-row Parquet file (columns ts, p, c; written by pyarrow) with one byte XOR 0x55 — at
#: offset 201 (a data page header: polars ABORTED the whole process, SIGABRT) and at offset
#: 203 (polars panicked: pyo3_runtime.PanicException, a BaseException no handler caught).
#: Found by test_ingest_fuzz.py::test_generic_parquet at the "fuzz" profile, case 3,725.
ABORTS = (
    "UEFSMRUEFYAFFdoCTBVQFQASAADAAgAADQEAAQ0IAAINCAADDQgABA0IAAUNCAAGDQgABw0IAAgNCAAJDQgACg0IAAsN"
    "CAAMDQgADQ0IAA4NCAAPDQgAEA0IABENCAASDQgAEw0IABQNCAAVDQgAFg0IABcNCAAYDQgAGQ0IABoNCAAbDQgAHA0I"
    "BB0ACQEAHgkHBAAfDQgAIA0IACENCAAiDQgAIw0IACQNCAAlDQg8JgAAAAAAAAAnAAAAAAAAABUAFUwVUCwVBRUQFQYV"
    "BhwYCCcAAAAAAAAAGAgAAAAAAAAAABYAKAgnAAAAAAAAABgIAAAAAAAAAAAREQAAACaUAgAAAFABBgtAIAxEYRxIoixM"
    "4zxQJE1UZV1Ypm1c531gKI5kaZ4VBBWABRXgAkwVUBUAEgAAwAIAAA0BACUNCABKDQgAbw0IAJQNCAC5DQgA3g0IBAMB"
    "CQkAKA0IAE0NCAByDQgAlw0IALwNCADhDQgEBgIJOAArDQgAUA0IAHUNCACaDQgAvw0IAOQNCAQJAwk4AC4NCABTDQgA"
    "eA0IAJ0NCADCDQgA5w0IBAwECTgAMQ0IAFYNCAB7DQgAoA0IAMUNCADqDQgEDwUJOAA0DQgAWQ0IPH4FAAAAAAAAowUA"
    "AAAAAAAVABVMFVAsFVAVEBUGFQYcGAijBQAAAAAAABgIAAAAAAAAAAAWACgIowUAAAAAAAAYCAAAAAAAAAAAEREAAAAm"
    "lAIAAABQAQYLQCAMRGEcSKIsTOM8UCRNVGVdWKZtXOd9YCiOZGmeFQQVcBVMTBUOFQASAAA4AAANAQABDQgAAg0IAAMN"
    "CAAEDQg8BQAAAAAAAAAGAAAAAAAAABUAFS4VMiwVUBUQFQYVBhwYCAYAAAAAAAAAGAgAAAAAAAAAABYAKAgGAAAAAAAA"
    "ABgIAAAAAAAAAAAREQAAABdYAgAAAFABAwuIxhrRWCMaa0RjjWisEY0VBBlMNQAYBnNjaGVtYRUGABUEJQIYAnRzABUE"
    "JQIYAXAAFQQlAhgBYwAWUBkcGTwmABwVBBk1AAYQGRgCdHMVAhZQFuoGFsgEJoIDJggcGAgnAAAAAAAAABgIAAAAAAAA"
    "AAAWACgIJwAAAAAAAAAYCAAAAAAAAAAAEREAGSwVBBUAFQIAFQAVEBUCADwpBhkmAFAAAAAmABwVBBk1AAYQGRgBcBUC"
    "FlAW6gYWzgQm0Acm0AQcGAijBQAAAAAAABgIAAAAAAAAAAAWACgIowUAAAAAAAAYCAAAAAAAAAAAEREAGSwVBBUAFQIA"
    "FQAVEBUCADwpBhkmAFAAAAAmABwVBBk1AAYQGRgBYxUCFlAWuAIWmAImhgomngkcGAgGAAAAAAAAABgIAAAAAAAAAAAW"
    "ACgIBgAAAAAAAAAYCAAAAAAAAAAAEREAGSwVBBUAFQIAFQAVEBUCADwpBhkmAFAAAAAWjBAWUCYIFq4LABkcGAxBUlJP"
    "VzpzY2hlbWEYrAIvLy8vLzlnQUFBQVFBQUFBQUFBS0FBd0FCZ0FGQUFnQUNnQUFBQUFCQkFBTUFBQUFDQUFJQUFBQUJB"
    "QUlBQUFBQkFBQUFBTUFBQUIwQUFBQU5BQUFBQVFBQUFDby8vLy9BQUFCQWhBQUFBQVVBQUFBQkFBQUFBQUFBQUFCQUFB"
    "QVl3QUFBSmovLy84QUFBQUJRQUFBQU5ULy8vOEFBQUVDRUFBQUFCUUFBQUFFQUFBQUFBQUFBQUVBQUFCd0FBQUF4UC8v"
    "L3dBQUFBRkFBQUFBRUFBVUFBZ0FCZ0FIQUF3QUFBQVFBQkFBQUFBQUFBRUNFQUFBQUJ3QUFBQUVBQUFBQUFBQUFBSUFB"
    "QUIwY3dBQUNBQU1BQWdBQndBSUFBQUFBQUFBQVVBQUFBQT0AGCBwYXJxdWV0LWNwcC1hcnJvdyB2ZXJzaW9uIDI2LjAu"
    "MRk8HAAAHAAAHAAAANsCAABQQVIx"
)

PANICS = (
    "UEFSMRUEFYAFFdoCTBVQFQASAADAAgAADQEAAQ0IAAINCAADDQgABA0IAAUNCAAGDQgABw0IAAgNCAAJDQgACg0IAAsN"
    "CAAMDQgADQ0IAA4NCAAPDQgAEA0IABENCAASDQgAEw0IABQNCAAVDQgAFg0IABcNCAAYDQgAGQ0IABoNCAAbDQgAHA0I"
    "BB0ACQEAHgkHBAAfDQgAIA0IACENCAAiDQgAIw0IACQNCAAlDQg8JgAAAAAAAAAnAAAAAAAAABUAFUwVUCwVUBVFFQYV"
    "BhwYCCcAAAAAAAAAGAgAAAAAAAAAABYAKAgnAAAAAAAAABgIAAAAAAAAAAAREQAAACaUAgAAAFABBgtAIAxEYRxIoixM"
    "4zxQJE1UZV1Ypm1c531gKI5kaZ4VBBWABRXgAkwVUBUAEgAAwAIAAA0BACUNCABKDQgAbw0IAJQNCAC5DQgA3g0IBAMB"
    "CQkAKA0IAE0NCAByDQgAlw0IALwNCADhDQgEBgIJOAArDQgAUA0IAHUNCACaDQgAvw0IAOQNCAQJAwk4AC4NCABTDQgA"
    "eA0IAJ0NCADCDQgA5w0IBAwECTgAMQ0IAFYNCAB7DQgAoA0IAMUNCADqDQgEDwUJOAA0DQgAWQ0IPH4FAAAAAAAAowUA"
    "AAAAAAAVABVMFVAsFVAVEBUGFQYcGAijBQAAAAAAABgIAAAAAAAAAAAWACgIowUAAAAAAAAYCAAAAAAAAAAAEREAAAAm"
    "lAIAAABQAQYLQCAMRGEcSKIsTOM8UCRNVGVdWKZtXOd9YCiOZGmeFQQVcBVMTBUOFQASAAA4AAANAQABDQgAAg0IAAMN"
    "CAAEDQg8BQAAAAAAAAAGAAAAAAAAABUAFS4VMiwVUBUQFQYVBhwYCAYAAAAAAAAAGAgAAAAAAAAAABYAKAgGAAAAAAAA"
    "ABgIAAAAAAAAAAAREQAAABdYAgAAAFABAwuIxhrRWCMaa0RjjWisEY0VBBlMNQAYBnNjaGVtYRUGABUEJQIYAnRzABUE"
    "JQIYAXAAFQQlAhgBYwAWUBkcGTwmABwVBBk1AAYQGRgCdHMVAhZQFuoGFsgEJoIDJggcGAgnAAAAAAAAABgIAAAAAAAA"
    "AAAWACgIJwAAAAAAAAAYCAAAAAAAAAAAEREAGSwVBBUAFQIAFQAVEBUCADwpBhkmAFAAAAAmABwVBBk1AAYQGRgBcBUC"
    "FlAW6gYWzgQm0Acm0AQcGAijBQAAAAAAABgIAAAAAAAAAAAWACgIowUAAAAAAAAYCAAAAAAAAAAAEREAGSwVBBUAFQIA"
    "FQAVEBUCADwpBhkmAFAAAAAmABwVBBk1AAYQGRgBYxUCFlAWuAIWmAImhgomngkcGAgGAAAAAAAAABgIAAAAAAAAAAAW"
    "ACgIBgAAAAAAAAAYCAAAAAAAAAAAEREAGSwVBBUAFQIAFQAVEBUCADwpBhkmAFAAAAAWjBAWUCYIFq4LABkcGAxBUlJP"
    "VzpzY2hlbWEYrAIvLy8vLzlnQUFBQVFBQUFBQUFBS0FBd0FCZ0FGQUFnQUNnQUFBQUFCQkFBTUFBQUFDQUFJQUFBQUJB"
    "QUlBQUFBQkFBQUFBTUFBQUIwQUFBQU5BQUFBQVFBQUFDby8vLy9BQUFCQWhBQUFBQVVBQUFBQkFBQUFBQUFBQUFCQUFB"
    "QVl3QUFBSmovLy84QUFBQUJRQUFBQU5ULy8vOEFBQUVDRUFBQUFCUUFBQUFFQUFBQUFBQUFBQUVBQUFCd0FBQUF4UC8v"
    "L3dBQUFBRkFBQUFBRUFBVUFBZ0FCZ0FIQUF3QUFBQVFBQkFBQUFBQUFBRUNFQUFBQUJ3QUFBQUVBQUFBQUFBQUFBSUFB"
    "QUIwY3dBQUNBQU1BQWdBQndBSUFBQUFBQUFBQVVBQUFBQT0AGCBwYXJxdWV0LWNwcC1hcnJvdyB2ZXJzaW9uIDI2LjAu"
    "MRk8HAAAHAAAHAAAANsCAABQQVIx"
)

_CHILD = """
import base64, sys
from pathlib import Path
from burstlab.errors import InputError
from burstlab.traces import ingest_generic
path = Path(sys.argv[1])
path.write_bytes(base64.b64decode(sys.argv[2]))
try:
    ingest_generic([path], "arrival_s=ts,input_tokens=p,output_tokens=c", data_dir=sys.argv[3])
except InputError as exc:
    print("InputError:", exc)
"""


@pytest.mark.parametrize("damaged", [ABORTS, PANICS], ids=["aborts", "panics"])
def test_damaged_parquet_that_crashed_polars_is_an_input_error(tmp_path, damaged):
    """In a child process: before the fix one case killed the interpreter outright."""
    import subprocess
    import sys

    path = tmp_path / "trace.parquet"
    args = [sys.executable, "-c", _CHILD, str(path), "".join(damaged), str(tmp_path / "data")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"InputError: {path}: not a readable Parquet file (")
    assert done.stdout.count("\n") == 1
    assert not list((tmp_path / "data").rglob("*.parquet"))
