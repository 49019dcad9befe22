"""Bad input: clear errors naming file, line, expected vs found — and nothing half-written."""

from __future__ import annotations

import gzip

import pytest

from burstlab.errors import InputError, UsageError
from burstlab.traces import ingest, sample_frame


def _written(data_dir) -> list[str]:
    """Every file under <data>/parquet, hidden temporaries included."""
    root = data_dir / "parquet"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_wrong_source_for_file_names_expected_and_found_columns(fixture_copy, data_dir):
    path = fixture_copy("BurstGPT_1.FIXTURE.csv")
    with pytest.raises(InputError) as err:
        ingest("azure-llm-2023-code", [path])
    text = str(err.value)
    assert str(path) in text
    assert "missing column(s) ['TIMESTAMP', 'ContextTokens', 'GeneratedTokens']" in text
    assert "found ['Timestamp', 'Model', 'Request tokens'" in text
    assert _written(data_dir) == []


def test_file_fitting_no_dataset_of_a_family(fixture_copy, data_dir):
    path = fixture_copy("generic_requests.FIXTURE.csv")
    with pytest.raises(InputError, match="does not look like any burstgpt dataset"):
        ingest("burstgpt", [path])
    assert _written(data_dir) == []


def test_strict_names_file_and_line_of_first_bad_row(fixture_copy, data_dir):
    path = fixture_copy("BurstGPT_1.FIXTURE.csv")
    with pytest.raises(InputError) as err:
        ingest("burstgpt-1", [path], strict=True)
    # header is line 1; "120,GPT-4,abc,..." is the 5th data row
    assert err.value.line == 6
    assert err.value.path == path
    assert "missing or non-integer token count" in str(err.value)
    assert _written(data_dir) == []


def test_strict_line_numbers_in_jsonl(tmp_path, data_dir):
    path = tmp_path / "conversation_trace.jsonl"
    path.write_text(
        '{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [0]}\n'
        '{"timestamp": 3000, "input_length": 6, "output_length": 2, "hash_ids": [0, 1]}\n'
        "this line is not json\n"
    )
    result = ingest("mooncake-conversation", [path])
    assert (result.rows_read, result.rows_kept) == (3, 2)
    assert result.dropped == {"missing timestamp": 1}
    with pytest.raises(InputError) as err:
        ingest("mooncake-conversation", [path], strict=True)
    assert err.value.line == 3


def test_empty_and_header_only_files(tmp_path, data_dir):
    empty = tmp_path / "AzureLLMInferenceTrace_code.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        ingest("azure-llm-2023-code", [empty])
    empty.write_bytes(b"TIMESTAMP,ContextTokens,GeneratedTokens\r\n")
    with pytest.raises(InputError, match="no data rows"):
        ingest("azure-llm-2023-code", [empty])
    assert _written(data_dir) == []


def test_truncated_gzip_is_an_error_and_leaves_nothing(tmp_path, fixture_copy, data_dir):
    raw = fixture_copy("AzureLMMInferenceTrace_multimodal.FIXTURE.csv").read_bytes() * 200
    packed = gzip.compress(raw)
    gz = tmp_path / "AzureLMMInferenceTrace_multimodal.csv.gz"
    gz.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InputError, match="cannot decompress") as err:
        ingest("azure-llm-2025-multimodal", [gz])
    assert err.value.path == gz
    assert _written(data_dir) == []
    assert list((data_dir / "downloads").glob(".*")) == []  # the unpack folder is gone too


def test_every_row_dropped_is_an_error(tmp_path, data_dir):
    path = tmp_path / "AzureLLMInferenceTrace_code.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,2\nnoon,3,4\n")
    with pytest.raises(InputError, match="every row was dropped") as err:
        ingest("azure-llm-2023-code", [path])
    assert "'unparsable TIMESTAMP': 2" in str(err.value)
    assert _written(data_dir) == []


def test_rar_without_an_extractor_names_what_to_install(tmp_path, monkeypatch, data_dir):
    from burstlab.traces import archives

    monkeypatch.setattr(archives.shutil, "which", lambda name: None)
    rar = tmp_path / "AzureFunctionsInvocationTraceForTwoWeeksJan2021.rar"
    rar.write_bytes(b"Rar!\x1a\x07\x00not really")
    with pytest.raises(InputError) as err:
        ingest("azure-functions-2021", [rar])
    assert "bsdtar" in str(err.value) and "unrar" in str(err.value)
    assert "extract it yourself" in str(err.value)


def test_unknown_source_lists_known_ones():
    with pytest.raises(UsageError, match="unknown source 'nope'") as err:
        ingest("nope", ["x.csv"])
    assert err.value.param == "source"
    assert "burstgpt" in str(err.value) and "azure-llm-2023-conv" in str(err.value)


def test_unknown_sample_and_dataset_ids_are_usage_errors():
    with pytest.raises(UsageError, match="no shipped sample named 'burstgpt-1'") as err:
        sample_frame("burstgpt-1")
    assert err.value.param == "source" and "azure-llm-2023-conv" in err.value.message
    from burstlab.traces import burstgpt

    assert burstgpt.ADAPTER.source("burstgpt-3").filename == "BurstGPT_3.csv"
    with pytest.raises(
        UsageError, match="burstgpt \\(requests\\) has no dataset 'burstgpt-9'"
    ) as err:
        burstgpt.ADAPTER.source("burstgpt-9")
    assert err.value.param == "source_id" and "'burstgpt-without-fails-3'" in err.value.message


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        (
            {"mapping": "arrival_s"},
            "mapping",
            "expected canonical=source_column, found 'arrival_s'",
        ),
        ({"mapping": "arrival_s=t,prompt_len=p"}, "mapping", "unknown requests column(s)"),
        ({"mapping": "arrival_s=t,input_tokens=p"}, "mapping", "must give ['output_tokens']"),
        ({"table": "tweets"}, "table", "unknown table 'tweets'"),
        ({"time_unit": "hours"}, "time_unit", "unknown time unit 'hours'"),
        ({"time_unit": "datetime"}, "time_format", "needs a timestamp format"),
        ({"files": []}, "files", "needs at least one file"),
    ],
)
def test_bad_generic_parameters_name_the_parameter_never_a_flag(tmp_path, kwargs, param, message):
    from burstlab.traces.generic import ingest_generic

    path = tmp_path / "my.csv"
    path.write_text("t,p,c\n1,2,3\n")
    args = {"files": [path], "mapping": "arrival_s=t,input_tokens=p,output_tokens=c", **kwargs}
    with pytest.raises(UsageError) as err:
        ingest_generic(args.pop("files"), args.pop("mapping"), **args)
    assert err.value.param == param
    assert message in err.value.message
    assert "--" not in err.value.message
    assert str(err.value) == f"{param}: {err.value.message}"
    assert not (tmp_path / "parquet").exists()


def test_cli_shows_a_generic_parameter_as_its_flag(tmp_path, data_dir):
    from typer.testing import CliRunner

    from burstlab.cli import app

    path = tmp_path / "my.csv"
    path.write_text("t,p,c\n1,2,3\n")
    args = ["ingest", "generic", str(path), "--map", "arrival_s=t,input_tokens=p,output_tokens=c"]
    result = CliRunner().invoke(app, [*args, "--time-unit", "hours"])
    assert result.exit_code == 2
    assert "--time-unit: unknown time unit 'hours'" in " ".join(result.output.split())
    assert _written(data_dir) == []


def test_byte_order_mark_and_spaces_in_header_are_tolerated(tmp_path):
    path = tmp_path / "AzureLLMInferenceTrace_code.csv"
    path.write_bytes(
        "\ufeffTIMESTAMP, ContextTokens ,GeneratedTokens\r\n"
        "2023-11-16 18:17:03.9799600,4808,10\r\n"
        "2023-11-16 18:17:04.0319600,3180,8".encode()
    )
    result = ingest("azure-llm-2023-code", [path])
    assert result.rows_kept == 2 and result.span_s == 0.052
